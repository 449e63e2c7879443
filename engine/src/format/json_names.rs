//! JSON field names matched to columns without regard to ASCII case, as ksqlDB matches
//! them: `{"ID": 1}` and `{"id": 1}` both fill a column declared `id` (ksqlDB upper-cases
//! unquoted names and looks JSON fields up case-insensitively; Eddy lower-cases them).
//!
//! arrow-json matches names exactly, so before decoding, the top-level field names of
//! each object are rewritten in place to the column's own spelling. An ASCII case change
//! keeps the length, so the rewrite patches bytes and never moves them. A field that
//! matches a column exactly is left alone, and so is one whose name would match two
//! columns that differ only in case (quoted identifiers): those are matched exactly.

use std::collections::HashMap;

use arrow::datatypes::Schema;

/// The columns of a schema by ASCII-lower-cased name.
#[derive(Debug, Clone)]
pub struct FieldNames {
    exact: HashMap<Vec<u8>, ()>,
    /// Lower-cased name → the column's own spelling; `None` where two columns fold to
    /// the same name.
    folded: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl FieldNames {
    /// The names of `schema`'s top-level fields.
    pub fn new(schema: &Schema) -> Self {
        let mut exact = HashMap::new();
        let mut folded: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
        for field in schema.fields() {
            let name = field.name().as_bytes().to_vec();
            exact.insert(name.clone(), ());
            folded.entry(name.to_ascii_lowercase()).and_modify(|v| *v = None).or_insert(Some(name));
        }
        FieldNames { exact, folded }
    }

    /// The column spelling a JSON field name should be rewritten to, if it differs.
    fn rewrite(&self, key: &[u8]) -> Option<&[u8]> {
        if self.exact.contains_key(key) {
            return None;
        }
        match self.folded.get(&key.to_ascii_lowercase()) {
            Some(Some(name)) if name.len() == key.len() => Some(name),
            _ => None,
        }
    }

    /// `input` (one or more JSON values separated by whitespace) with the top-level field
    /// names of its objects spelled as the columns are. Borrowed when nothing changes.
    /// Scanning stops at the first thing that is not well-formed JSON: the decoder then
    /// reports it, and the values after it are decoded one at a time.
    pub fn normalize<'a>(&self, input: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let mut patches: Vec<(usize, &[u8])> = Vec::new();
        let mut scan = Scanner { bytes: input, at: 0 };
        loop {
            scan.skip_whitespace();
            if scan.at >= input.len() {
                break;
            }
            if scan
                .object(|start, key| {
                    if let Some(name) = self.rewrite(key) {
                        patches.push((start, name));
                    }
                })
                .is_none()
            {
                break;
            }
        }
        if patches.is_empty() {
            return std::borrow::Cow::Borrowed(input);
        }
        let mut out = input.to_vec();
        for (start, name) in patches {
            out[start..start + name.len()].copy_from_slice(name);
        }
        std::borrow::Cow::Owned(out)
    }
}

/// A cursor over JSON text that finds top-level object keys and skips values.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// An object; calls `on_key(start, key)` for each key without escapes (`start` is
    /// the offset of its first byte). `None` when the text is not a well-formed object.
    fn object(&mut self, mut on_key: impl FnMut(usize, &[u8])) -> Option<()> {
        if self.peek()? != b'{' {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.skip_whitespace();
            let (start, escaped) = self.string()?;
            if !escaped {
                on_key(start, &self.bytes[start..self.at - 1]);
            }
            self.skip_whitespace();
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            self.skip_whitespace();
            self.value()?;
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string; returns the offset after its opening quote and whether it holds
    /// escapes, and leaves the cursor after its closing quote. A raw line break ends the
    /// scan (JSON strings cannot hold one; the value is malformed).
    fn string(&mut self) -> Option<(usize, bool)> {
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        let start = self.at;
        let mut escaped = false;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some((start, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                b'\n' | b'\r' => return None,
                _ => self.at += 1,
            }
        }
    }

    /// Any value: a string, an object or array (nested, skipped whole), or a scalar.
    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                let start = self.at;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.at += 1;
                }
                (self.at > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field};

    use super::*;

    fn names(columns: &[&str]) -> FieldNames {
        FieldNames::new(&Schema::new(columns.iter().map(|c| Field::new(*c, DataType::Utf8, true)).collect::<Vec<_>>()))
    }

    fn normalized(names: &FieldNames, input: &str) -> String {
        String::from_utf8_lossy(&names.normalize(input.as_bytes())).into_owned()
    }

    #[test]
    fn upper_and_mixed_case_fields_take_the_column_spelling() {
        let n = names(&["id", "name", "userid"]);
        assert_eq!(
            normalized(&n, r#"{"ID": 1, "Name": "a", "userId": {"ID": [1, "}"]}, "other": "ID"}"#),
            r#"{"id": 1, "name": "a", "userid": {"ID": [1, "}"]}, "other": "ID"}"#
        );
        assert_eq!(normalized(&n, "{\"ID\":1}\n{\"NAME\":\"x\\\"y\"}\n"), "{\"id\":1}\n{\"name\":\"x\\\"y\"}\n");
        assert!(matches!(n.normalize(br#"{"id": 1}"#), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn exact_matches_and_ambiguous_names_stay() {
        // Quoted identifiers "ID" and id: each JSON field matches exactly or not at all.
        let n = names(&["ID", "id"]);
        assert_eq!(normalized(&n, r#"{"ID": 1, "Id": 2, "id": 3}"#), r#"{"ID": 1, "Id": 2, "id": 3}"#);
    }

    #[test]
    fn malformed_text_stops_the_scan() {
        let n = names(&["id"]);
        assert_eq!(normalized(&n, "{\"ID\": 1}\n{\"ID\": \"2d\n{\"ID\": 3}"), "{\"id\": 1}\n{\"id\": \"2d\n{\"ID\": 3}");
        assert_eq!(normalized(&n, "hello,world\n{\"ID\": 3}"), "hello,world\n{\"ID\": 3}");
        assert_eq!(normalized(&n, "[1, 2]"), "[1, 2]");
        // Keys seen before the scan stops may be respelled: harmless, the value is malformed.
        assert_eq!(normalized(&n, "{\"ID\" 1}"), "{\"id\" 1}");
        assert_eq!(normalized(&n, "{\"ID\": "), "{\"id\": ");
    }
}
