//! Byte offsets <-> (line, UTF-16 column) positions, as editors speak them.
//!
//! The Language Server Protocol counts columns in UTF-16 code units by default, while every
//! span in the compiler is a byte range. A [`LineIndex`] converts both ways in O(log lines +
//! line length) and never panics: positions past the end of a line or of the text are
//! clamped, and a column that falls inside a character (between the two halves of a surrogate
//! pair, or inside a multi-byte UTF-8 sequence) snaps to that character's start.

/// Line starts of one text, for position conversion.
#[derive(Clone, Debug, Default)]
pub struct LineIndex {
    /// Byte offset of the first character of every line (the first is always 0).
    starts: Vec<usize>,
    /// Length of the text in bytes.
    len: usize,
}

impl LineIndex {
    /// Indexes `text`. Lines end at `\n`; a `\r` before it belongs to the line, as LSP
    /// clients also count `\r\n` as one line break and never place a position between them.
    pub fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// Number of lines (an empty text has one).
    pub fn line_count(&self) -> usize {
        self.starts.len()
    }

    /// The 0-based line containing byte `offset` (clamped to the text).
    pub fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.len);
        match self.starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l.saturating_sub(1),
        }
    }

    /// The byte range of a 0-based line, without its line break.
    pub fn line_range(&self, text: &str, line: usize) -> std::ops::Range<usize> {
        let Some(&start) = self.starts.get(line) else {
            return self.len..self.len;
        };
        let mut end = self.starts.get(line + 1).map_or(self.len, |s| s - 1);
        if end > start && text.as_bytes().get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        start.min(text.len())..end.min(text.len())
    }

    /// 0-based line and UTF-16 column of a byte offset. An offset inside a character counts
    /// as that character's start.
    pub fn to_utf16(&self, text: &str, offset: usize) -> (u32, u32) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_of(offset);
        let start = self.starts.get(line).copied().unwrap_or(0).min(offset);
        let col: usize = text[start..offset].chars().map(char::len_utf16).sum();
        (line as u32, col as u32)
    }

    /// Byte offset of a 0-based line and UTF-16 column. A line past the end gives the end of
    /// the text; a column past the end of its line gives the end of that line (before the
    /// line break); a column inside a character gives that character's start.
    pub fn from_utf16(&self, text: &str, line: u32, col: u32) -> usize {
        let line = line as usize;
        if line >= self.starts.len() {
            return text.len();
        }
        let range = self.line_range(text, line);
        let mut units = 0usize;
        for (i, c) in text[range.clone()].char_indices() {
            let next = units + c.len_utf16();
            if next > col as usize {
                return range.start + i;
            }
            units = next;
        }
        range.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_round_trip() {
        let t = "ab\ncd\n";
        let ix = LineIndex::new(t);
        assert_eq!(ix.to_utf16(t, 4), (1, 1));
        assert_eq!(ix.from_utf16(t, 1, 1), 4);
        assert_eq!(ix.from_utf16(t, 1, 99), 5);
        assert_eq!(ix.from_utf16(t, 9, 0), t.len());
        assert_eq!(ix.to_utf16(t, t.len()), (2, 0));
    }

    #[test]
    fn surrogate_pairs_and_multibyte() {
        // 'é' is 2 bytes / 1 unit, '😀' is 4 bytes / 2 units.
        let t = "é😀x\r\ny";
        let ix = LineIndex::new(t);
        assert_eq!(ix.to_utf16(t, 2), (0, 1));
        assert_eq!(ix.to_utf16(t, 6), (0, 3));
        assert_eq!(ix.to_utf16(t, 4), (0, 1), "inside a character snaps back");
        assert_eq!(ix.from_utf16(t, 0, 3), 6);
        assert_eq!(ix.from_utf16(t, 0, 2), 2, "between surrogates snaps back");
        assert_eq!(ix.from_utf16(t, 0, 9), 7, "before \\r\\n");
        assert_eq!(ix.from_utf16(t, 1, 0), 9);
    }
}
