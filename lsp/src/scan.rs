//! A tolerant scanner for XML as it is being typed.
//!
//! The compiler's reader (roxmltree) rejects a document at its first syntax error, but an
//! editor asks about half-typed documents all the time: `<rule action='acc` has no end, the
//! closing tag is not written yet. This scanner reads any text into tags, attributes and
//! comments with byte ranges, guessing the end of unterminated pieces, so completion, hover,
//! folding and semantic tokens work while the file is broken. It never fails and never panics.

use std::ops::Range;

/// One attribute of a tag.
#[derive(Clone, Debug)]
pub struct Attr {
    /// Attribute name as written.
    pub name: String,
    /// Byte range of the name.
    pub name_span: Range<usize>,
    /// The value text and its byte range (inside the quotes), if a value was started.
    pub value: Option<(String, Range<usize>)>,
}

/// A start, end or empty-element tag.
#[derive(Clone, Debug)]
pub struct Tag {
    /// Element name (may be empty while typing `<`).
    pub name: String,
    /// Byte range of the name.
    pub name_span: Range<usize>,
    /// Byte range of the whole tag (to the `>`, or to where scanning stopped).
    pub span: Range<usize>,
    /// Whether the tag was closed by `>`.
    pub terminated: bool,
    /// `</name>`.
    pub closing: bool,
    /// `<name/>`.
    pub self_closing: bool,
    /// Attributes in order.
    pub attrs: Vec<Attr>,
}

impl Tag {
    /// The attribute with this name.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// An element: its start tag and, if found, its end tag.
#[derive(Clone, Debug)]
pub struct Element {
    /// Index of the start tag in [`Scan::tags`].
    pub open: usize,
    /// Index of the matching end tag, if any.
    pub close: Option<usize>,
    /// Index of the parent element in [`Scan::elements`].
    pub parent: Option<usize>,
}

/// Everything found in one text.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// Tags in document order.
    pub tags: Vec<Tag>,
    /// Comments (`<!-- ... -->`), whole range.
    pub comments: Vec<Range<usize>>,
    /// Elements in document order of their start tags.
    pub elements: Vec<Element>,
    /// For every tag, the element it opens or closes (if any).
    pub tag_element: Vec<Option<usize>>,
}

fn is_name_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace() || matches!(b, b'<' | b'>' | b'/' | b'=' | b'"' | b'\''))
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Scans `text`.
pub fn scan(text: &str) -> Scan {
    let b = text.as_bytes();
    let mut s = Scan::default();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            let end = find(b, i + 4, b"-->").map_or(b.len(), |e| e + 3);
            s.comments.push(i..end);
            i = end;
        } else if rest.starts_with(b"<?") {
            i = find(b, i + 2, b"?>").map_or(b.len(), |e| e + 2);
        } else if rest.starts_with(b"<![CDATA[") {
            i = find(b, i + 9, b"]]>").map_or(b.len(), |e| e + 3);
        } else if rest.starts_with(b"<!") {
            i = find(b, i + 2, b">").map_or(b.len(), |e| e + 1);
        } else {
            let tag = scan_tag(text, i);
            i = tag.span.end.max(i + 1);
            s.tags.push(tag);
        }
    }
    build_elements(&mut s);
    s
}

/// Reads one tag starting at the `<` at `start`.
fn scan_tag(text: &str, start: usize) -> Tag {
    let b = text.as_bytes();
    let mut i = start + 1;
    let closing = b.get(i) == Some(&b'/');
    if closing {
        i += 1;
    }
    let name_start = i;
    while i < b.len() && is_name_byte(b[i]) {
        i += 1;
    }
    let mut tag = Tag {
        name: text[name_start..i].to_string(),
        name_span: name_start..i,
        span: start..i,
        terminated: false,
        closing,
        self_closing: false,
        attrs: Vec::new(),
    };
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        match b.get(i) {
            None | Some(b'<') => break,
            Some(b'>') => {
                i += 1;
                tag.terminated = true;
                break;
            }
            Some(b'/') if b.get(i + 1) == Some(&b'>') => {
                i += 2;
                tag.terminated = true;
                tag.self_closing = true;
                break;
            }
            Some(&c) if !is_name_byte(c) => i += 1,
            Some(_) => {
                let ns = i;
                while i < b.len() && is_name_byte(b[i]) {
                    i += 1;
                }
                let mut attr = Attr {
                    name: text[ns..i].to_string(),
                    name_span: ns..i,
                    value: None,
                };
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if b.get(j) == Some(&b'=') {
                    j += 1;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    match b.get(j) {
                        Some(&q) if q == b'"' || q == b'\'' => {
                            let vs = j + 1;
                            // An unterminated value ends before the next `<` (never legal in
                            // a value) or newline, so the rest of the file is not swallowed.
                            let mut k = vs;
                            while k < b.len() && b[k] != q && b[k] != b'<' && b[k] != b'\n' {
                                k += 1;
                            }
                            attr.value = Some((text[vs..k].to_string(), vs..k));
                            i = if b.get(k) == Some(&q) { k + 1 } else { k };
                        }
                        _ => {
                            let vs = j;
                            let mut k = j;
                            while k < b.len() && is_name_byte(b[k]) {
                                k += 1;
                            }
                            attr.value = Some((text[vs..k].to_string(), vs..k));
                            i = k;
                        }
                    }
                }
                tag.attrs.push(attr);
            }
        }
    }
    tag.span = start..i;
    tag
}

fn build_elements(s: &mut Scan) {
    let mut stack: Vec<usize> = Vec::new();
    s.tag_element = vec![None; s.tags.len()];
    for (ti, tag) in s.tags.iter().enumerate() {
        if tag.closing {
            // Close the innermost open element of that name, and everything opened after it
            // (their end tags are missing).
            if let Some(pos) = stack
                .iter()
                .rposition(|&e| s.tags[s.elements[e].open].name == tag.name)
            {
                let e = stack[pos];
                s.elements[e].close = Some(ti);
                s.tag_element[ti] = Some(e);
                stack.truncate(pos);
            }
            continue;
        }
        let e = s.elements.len();
        s.elements.push(Element {
            open: ti,
            close: None,
            parent: stack.last().copied(),
        });
        s.tag_element[ti] = Some(e);
        if !tag.self_closing {
            stack.push(e);
        }
    }
}

impl Scan {
    /// The byte range of a whole element (start tag to end tag, or the start tag alone).
    pub fn element_span(&self, e: usize) -> Range<usize> {
        let el = &self.elements[e];
        let start = self.tags[el.open].span.start;
        let end = el
            .close
            .map_or(self.tags[el.open].span.end, |c| self.tags[c].span.end);
        start..end
    }

    /// The start tag of an element.
    pub fn open_tag(&self, e: usize) -> &Tag {
        &self.tags[self.elements[e].open]
    }

    /// The tag whose text contains `offset` (the `>` itself counts; just after it does not).
    pub fn tag_at(&self, offset: usize) -> Option<usize> {
        let i = self.tags.partition_point(|t| t.span.start < offset);
        let i = i.checked_sub(1)?;
        let t = &self.tags[i];
        let inside = if t.terminated {
            offset < t.span.end
        } else {
            offset <= t.span.end
        };
        inside.then_some(i)
    }

    /// The innermost element open at `offset` (the one a new child would belong to).
    pub fn enclosing_element(&self, offset: usize) -> Option<usize> {
        let mut best = None;
        for (e, el) in self.elements.iter().enumerate() {
            let open = &self.tags[el.open];
            if open.span.start >= offset {
                break;
            }
            if open.self_closing || !open.terminated || open.span.end > offset {
                continue;
            }
            let still_open = el.close.is_none_or(|c| self.tags[c].span.start >= offset);
            if still_open {
                best = Some(e);
            }
        }
        best
    }

    /// Names of the enclosing elements of element `e`, innermost first.
    pub fn ancestors(&self, e: usize) -> Vec<&str> {
        let mut out = Vec::new();
        let mut cur = self.elements[e].parent;
        while let Some(p) = cur {
            out.push(self.open_tag(p).name.as_str());
            cur = self.elements[p].parent;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_typed() {
        let t = "<filter name='x'>\n <rule action='acc\n <tcp srcportstart=";
        let s = scan(t);
        assert_eq!(s.tags.len(), 3);
        assert_eq!(s.tags[1].attrs[0].value.as_ref().unwrap().0, "acc");
        assert_eq!(s.tags[2].name, "tcp");
        assert_eq!(s.elements[2].parent, Some(1));
    }

    #[test]
    fn nesting_and_comments() {
        let t = "<filter><!-- <rule> --><rule><ip/></rule></filter>";
        let s = scan(t);
        assert_eq!(s.comments.len(), 1);
        assert_eq!(s.elements.len(), 3);
        assert_eq!(s.elements[0].close, Some(4));
        assert_eq!(s.ancestors(2), vec!["rule", "filter"]);
        assert_eq!(s.enclosing_element(t.find("<ip").unwrap()), Some(1));
    }
}
