//! Reads nwfilter XML into the IR, reporting every problem it finds.
//!
//! The reader never stops at the first error: a bad attribute is reported and skipped, a bad
//! rule is reported and the rest of the filter is still read, so one run shows everything.

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{Entry, Filter, FilterRef, Match, Param, Rule};
use crate::lang::{self, ProtoSpec};
use crate::lower::{Lower, RawAttr};
use crate::source::{FileId, SourceMap, Span};
use roxmltree::{Document, Node, ParsingOptions};

/// Decodes file bytes; invalid UTF-8 is an error at the first bad byte.
pub fn read_text(bytes: Vec<u8>) -> Result<String, (usize, String)> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        (at, String::from_utf8_lossy(e.as_bytes()).into_owned())
    })
}

/// Parses a file as XML the way libvirt's libxml2 reads it; a syntax error becomes E0003 at
/// the place the parser stopped. `what` names the document in the message ("file", "binding").
pub fn parse_document<'t>(
    sources: &'t SourceMap,
    file: FileId,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Document<'t>> {
    let text = &sources.get(file).text;
    // libvirt (libxml2) accepts internal DTD subsets and expands their entities; roxmltree
    // does too, with its own limits against entity expansion bombs.
    let opts = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    match Document::parse_with_options(text, opts) {
        Ok(d) => {
            if let Some(deep) = too_deep(&d) {
                let start = deep.range().start;
                let end = start + 1 + deep.tag_name().name().len();
                diags.push(
                    Diagnostic::error(
                        "E0003",
                        format!(
                            "the {what} nests elements more than {MAX_NESTING} levels below the root"
                        ),
                    )
                    .at(Span::new(file, start..end), "too deep")
                    .with_note(
                        "libvirt's XML parser (libxml2) refuses such a document: \"Excessive depth in document: 256\"",
                    ),
                );
                return None;
            }
            Some(d)
        }
        Err(e) => {
            let pos = e.pos();
            let at = sources.get(file).offset(pos.row as usize, pos.col as usize);
            let end = (at + 1).min(text.len()).max(at);
            diags.push(
                Diagnostic::error("E0003", format!("the {what} is not well-formed XML: {e}"))
                    .at(Span::new(file, at..end), "the XML parser stopped here"),
            );
            None
        }
    }
}

/// How many levels of elements libxml2 (as libvirt uses it) allows below the root element:
/// libvirt 9.0 defines a filter with 256 nested elements inside `<filter>` and refuses 257.
const MAX_NESTING: usize = 256;

/// The first element nested deeper than [`MAX_NESTING`] below the root, if any.
fn too_deep<'a, 'i>(doc: &'a Document<'i>) -> Option<Node<'a, 'i>> {
    // Nodes are numbered in document order, so a parent's depth is known before its children's.
    let mut depth: Vec<usize> = Vec::new();
    for n in doc.root().descendants() {
        let d = n.parent().map_or(0, |p| depth[p.id().get_usize()] + 1);
        let i = n.id().get_usize();
        if depth.len() <= i {
            depth.resize(i + 1, 0);
        }
        depth[i] = d;
        // The document node is 0 and the root element 1.
        if n.is_element() && d > MAX_NESTING + 1 {
            return Some(n);
        }
    }
    None
}

/// Reads one filter document. Returns the filter if the document has a usable `<filter>`
/// root (even with errors inside it; they are in `diags`).
pub fn read_filter(sources: &SourceMap, file: FileId, diags: &mut Diagnostics) -> Option<Filter> {
    let text = &sources.get(file).text;
    if text.trim().is_empty() {
        diags.push(
            Diagnostic::error("E0002", "the file is empty")
                .at(
                    Span::new(file, 0..text.len()),
                    "expected a <filter> element",
                )
                .with_help("a filter file holds one <filter name='...'> element"),
        );
        return None;
    }
    let doc = parse_document(sources, file, "file", diags)?;
    let root = doc.root_element();
    let reader = Reader {
        l: Lower { file, diags },
    };
    if root.tag_name().name() != "filter" {
        let name = root.tag_name().name();
        let mut d = Diagnostic::error(
            "E0004",
            format!("expected a <filter> element, found <{name}>"),
        )
        .at(reader.tag_span(root), "not a filter");
        if matches!(name, "filterbinding" | "interface" | "domain") {
            d = d.with_help("this looks like a binding: use `nwf show --binding FILE`");
        }
        reader.l.diags.push(d);
        return None;
    }
    let mut reader = reader;
    let mut f = reader.filter(root)?;
    f.comments = doc
        .root()
        .children()
        .take_while(|c| !c.is_element())
        .filter_map(comment_text)
        .collect();
    Some(f)
}

fn comment_text(n: Node) -> Option<String> {
    n.is_comment()
        .then(|| n.text().unwrap_or("").trim().to_string())
}

/// Comments anywhere inside an element (not descending past protocol elements).
fn inner_comments(n: Node) -> Vec<String> {
    n.descendants().filter_map(comment_text).collect()
}

/// The XML reader: XML structure here, meaning in the shared [`Lower`].
struct Reader<'d> {
    l: Lower<'d>,
}

impl<'d> std::ops::Deref for Reader<'d> {
    type Target = Lower<'d>;
    fn deref(&self) -> &Lower<'d> {
        &self.l
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.l
    }
}

impl Reader<'_> {
    /// The `<name` part of an element's start tag.
    fn tag_span(&self, n: Node) -> Span {
        let start = n.range().start;
        self.span(start..start + 1 + n.tag_name().name().len())
    }

    fn attrs<'a>(&self, n: Node<'a, 'a>) -> Vec<RawAttr<'a>> {
        n.attributes()
            .map(|a| RawAttr {
                name: a.name(),
                value: a.value(),
                name_span: self.span(a.range_qname()),
                value_span: self.span(a.range_value()),
            })
            .collect()
    }

    fn missing(&mut self, n: Node, elem: &str, attr: &str, doc: &str) {
        let span = self.tag_span(n);
        self.missing_attr(span, elem, attr, doc);
    }

    fn check_no_text(&mut self, n: Node) {
        for c in n.children() {
            let t = c.text().unwrap_or("");
            if c.is_text() && !t.trim().is_empty() {
                // Underline the text itself, not the whitespace around it. The node's range
                // covers the raw text; entities may make it longer than `t`.
                let r = c.range();
                let lead = t.len() - t.trim_start().len();
                let start = (r.start + lead).min(r.end);
                let end = (start + t.trim().len()).min(r.end);
                let span = self.span(start..end);
                self.l.diags.push(
                    Diagnostic::warning(
                        "W0106",
                        format!("text is not allowed inside <{}>", n.tag_name().name()),
                    )
                    .at(span, "libvirt ignores this text; its schema rejects it"),
                );
            }
        }
    }

    fn filter(&mut self, n: Node) -> Option<Filter> {
        let spec = lang::element("filter").expect("filter is in the table");
        let allowed: Vec<_> = spec.attrs.iter().map(|a| a.name).collect();
        let mut name = None;
        let mut chain: Option<(String, Span)> = None;
        let mut prio: Option<(&str, Span)> = None;
        for a in self.attrs(n) {
            match a.name {
                "name" => name = Some((a.value.to_string(), a.value_span)),
                "chain" => chain = Some((a.value.to_string(), a.value_span)),
                "priority" => prio = Some((a.value, a.value_span)),
                _ => self.unknown_attr("filter", &a, &allowed),
            }
        }
        let at = self.tag_span(n);
        let mut f = self.filter_head(at, name, chain, prio);
        self.check_no_text(n);
        let mut pending: Vec<String> = Vec::new();
        for c in n.children() {
            if let Some(text) = comment_text(c) {
                pending.push(text);
                continue;
            }
            if !c.is_element() {
                continue;
            }
            match c.tag_name().name() {
                "uuid" => self.uuid(c, &mut f),
                "rule" => {
                    if let Some(mut r) = self.rule(c) {
                        r.comments = std::mem::take(&mut pending);
                        r.comments.extend(inner_comments(c));
                        f.entries.push(Entry::Rule(r));
                    }
                }
                "filterref" => {
                    if let Some(mut r) = self.filterref(c) {
                        r.comments = std::mem::take(&mut pending);
                        r.comments.extend(inner_comments(c));
                        f.entries.push(Entry::Ref(r));
                    }
                }
                other => {
                    let span = self.tag_span(c);
                    let mut d = Diagnostic::warning(
                        "W0105",
                        format!("unknown element <{other}> in <filter>"),
                    )
                    .at(span, "libvirt ignores this element; its schema rejects it")
                    .with_note("a filter holds <rule>, <filterref> and <uuid> elements");
                    if let Some(s) = lang::did_you_mean(other, ["rule", "filterref", "uuid"]) {
                        d = d.with_help(format!("did you mean <{s}>?")).with_fix(s);
                    } else if lang::protocol(other).is_some() {
                        d = d.with_help(format!("a <{other}> match goes inside a <rule>"));
                    }
                    self.l.diags.push(d);
                }
            }
        }
        f.trailing_comments = pending;
        Some(f)
    }

    fn uuid(&mut self, n: Node, f: &mut Filter) {
        for a in self.attrs(n) {
            self.unknown_attr("uuid", &a, &[]);
        }
        let text = n.text().unwrap_or("").trim().to_string();
        let span = n
            .first_child()
            .map(|c| self.span(c.range()))
            .unwrap_or_else(|| self.tag_span(n));
        let at = self.tag_span(n);
        self.uuid_into(&text, span, at, f);
    }

    fn filterref(&mut self, n: Node) -> Option<FilterRef> {
        let mut target = None;
        for a in self.attrs(n) {
            match a.name {
                "filter" => target = Some((a.value.to_string(), a.value_span)),
                _ => self.unknown_attr("filterref", &a, &["filter"]),
            }
        }
        self.check_no_text(n);
        let mut params = Vec::new();
        for c in n.children().filter(|c| c.is_element()) {
            if c.tag_name().name() != "parameter" {
                let span = self.tag_span(c);
                let mut d = Diagnostic::warning(
                    "W0105",
                    format!("unknown element <{}> in <filterref>", c.tag_name().name()),
                )
                .at(span, "libvirt ignores this element; its schema rejects it")
                .with_note("a filterref holds <parameter name='...' value='...'/> elements");
                if let Some(s) = lang::did_you_mean(c.tag_name().name(), ["parameter"]) {
                    d = d.with_help(format!("did you mean <{s}>?")).with_fix(s);
                }
                self.l.diags.push(d);
                continue;
            }
            if let Some(p) = self.parameter(c) {
                params.push(p);
            }
        }
        // libvirt keeps parameters in a table by name: only the order within one name (a list)
        // means anything.
        params.sort_by(|a: &Param, b: &Param| a.name.cmp(&b.name));
        let Some((filter, name_span)) = target else {
            self.missing(n, "filterref", "filter", "name of the filter to include");
            return None;
        };
        Some(FilterRef {
            filter,
            params,
            span: self.span(n.range()),
            name_span,
            comments: Vec::new(),
        })
    }

    fn parameter(&mut self, n: Node) -> Option<Param> {
        let mut name = None;
        let mut value = None;
        for a in self.attrs(n) {
            match a.name {
                "name" => name = Some((a.value, a.value_span)),
                "value" => value = Some((a.value, a.value_span)),
                _ => self.unknown_attr("parameter", &a, &["name", "value"]),
            }
        }
        let Some((name, ns)) = name else {
            self.missing(n, "parameter", "name", "the variable name");
            return None;
        };
        let Some((value, vs)) = value else {
            self.missing(
                n,
                "parameter",
                "value",
                "the variable's value ([A-Za-z0-9_.:]+)",
            );
            return None;
        };
        let span = self.span(n.range());
        self.param((name, ns), (value, vs), span)
    }

    fn rule(&mut self, n: Node) -> Option<Rule> {
        let spec = lang::element("rule").expect("rule is in the table");
        let allowed: Vec<_> = spec.attrs.iter().map(|a| a.name).collect();
        let mut action = None;
        let mut direction = None;
        let mut priority = lang::DEFAULT_RULE_PRIORITY;
        let mut statematch = true;
        let mut ok = true;
        let mut saw_action = false;
        let mut saw_direction = false;
        for a in self.attrs(n) {
            match a.name {
                "action" => {
                    saw_action = true;
                    action = self.enum_value(&a, lang::ACTIONS);
                    ok &= action.is_some();
                }
                "direction" => {
                    saw_direction = true;
                    direction = self.enum_value(&a, lang::DIRECTIONS);
                    ok &= direction.is_some();
                }
                "priority" => priority = self.rule_priority(&a),
                "statematch" => statematch = self.statematch(&a),
                _ => self.unknown_attr("rule", &a, &allowed),
            }
        }
        if !saw_action {
            self.missing(n, "rule", "action", spec.attrs[0].doc);
            ok = false;
        }
        if !saw_direction {
            self.missing(n, "rule", "direction", spec.attrs[1].doc);
            ok = false;
        }
        self.check_no_text(n);
        let mut matches: Option<Match> = None;
        // libvirt's parser skips elements it does not know (reported once the rule's match is
        // known: without another protocol element the rule matches every frame).
        let mut unknown = Vec::new();
        for c in n.children().filter(|c| c.is_element()) {
            let name = c.tag_name().name();
            let Some(proto) = lang::protocol(name) else {
                unknown.push((name, self.tag_span(c)));
                continue;
            };
            let (m, negated_elem) = self.proto_elem(c, proto);
            match &mut matches {
                None => matches = Some(m),
                Some(prev) if prev.proto.name == proto.name => {
                    let canonical_split = negated_elem
                        != prev.attrs.first().is_some_and(|a| a.written_negated)
                        && m.attrs.iter().all(|a| prev.get(a.spec.name).is_none());
                    if !canonical_split {
                        self.l.diags.push(
                            Diagnostic::warning(
                                "W0102",
                                format!("repeated <{name}> element in one rule"),
                            )
                            .at(self.tag_span(c), "libvirt merges this into the first one")
                            .related(prev.span, "first element")
                            .with_help("write all attributes in one element"),
                        );
                    }
                    for a in m.attrs {
                        prev.attrs.retain(|p| p.spec.name != a.spec.name);
                        prev.attrs.push(a);
                    }
                    prev.invalid.extend(m.invalid);
                }
                Some(prev) => {
                    self.l.diags.push(
                        Diagnostic::warning(
                            "W0103",
                            format!("<{name}> is ignored: a rule has one protocol element"),
                        )
                        .at(self.tag_span(c), "libvirt silently ignores this element")
                        .related(prev.span, "the rule's protocol element")
                        .with_help("write a separate rule for each protocol"),
                    );
                }
            }
        }
        for (name, span) in unknown {
            self.unknown_protocol(name, span, matches.is_none());
        }
        if let Some(m) = &mut matches {
            self.finish_match(m);
        }
        if !ok {
            return None;
        }
        Some(Rule {
            action: action?,
            direction: direction?,
            priority,
            statematch,
            matches,
            span: self.span(n.range()),
            comments: Vec::new(),
        })
    }

    fn proto_elem(&mut self, n: Node, proto: &'static ProtoSpec) -> (Match, bool) {
        let mut negated = false;
        let raw = self.attrs(n);
        if let Some(m) = raw.iter().find(|a| a.name == "match") {
            match m.value {
                "no" => negated = true,
                "yes" => {}
                other => self.l.diags.push(
                    Diagnostic::error("E0104", format!("invalid match `{other}`"))
                        .at(m.value_span, "expected yes or no"),
                ),
            }
        }
        let mut m = Match {
            proto,
            attrs: Vec::new(),
            span: self.tag_span(n),
            invalid: Vec::new(),
        };
        for a in raw.iter().filter(|a| a.name != "match") {
            self.proto_attr(&mut m, a, negated);
        }
        self.check_no_text(n);
        for c in n.children().filter(|c| c.is_element()) {
            let span = self.tag_span(c);
            self.l.diags.push(
                Diagnostic::warning("W0105", format!("<{}> cannot contain elements", proto.name))
                    .at(span, "libvirt ignores this element; its schema rejects it")
                    .with_note(format!(
                        "a match is written as attributes of <{}>",
                        proto.name
                    )),
            );
        }
        (m, negated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Origin;

    /// `levels` nested elements inside `<filter>`.
    fn nested(levels: usize) -> Diagnostics {
        let text = format!(
            "<filter name='deep'>{}{}</filter>",
            "<x>".repeat(levels),
            "</x>".repeat(levels)
        );
        let mut sources = SourceMap::new();
        let id = sources.add("deep.xml", Origin::Virtual("deep".into()), text);
        let mut d = Diagnostics::new();
        read_filter(&sources, id, &mut d);
        d
    }

    /// libvirt 9.0 defined a filter with 256 nested elements inside `<filter>` and refused 257
    /// ("Excessive depth in document: 256").
    #[test]
    fn nesting_limit_is_libxml2s() {
        let d = nested(MAX_NESTING);
        assert!(d.items().iter().all(|x| x.code != "E0003"));
        let d = nested(MAX_NESTING + 1);
        assert_eq!(d.items().len(), 1);
        assert_eq!(d.items()[0].code, "E0003");
    }
}
