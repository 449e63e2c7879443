//! JSON field names matched to columns without regard to ASCII case, as ksqlDB matches
//! them: `{"ID": 1}` and `{"id": 1}` both fill a column declared `id` (ksqlDB upper-cases
//! unquoted names and looks JSON fields up case-insensitively; Eddy lower-cases them).
//! The rule holds at every depth: the fields of a `STRUCT`/`ROW` column, of the structs
//! in an `ARRAY`, and of the struct values of a `MAP` (whose keys are data, never
//! respelled).
//!
//! arrow-json matches names exactly, so before decoding, the field names of each object
//! are rewritten in place to the column's own spelling. An ASCII case change keeps the
//! length, so the rewrite patches bytes and never moves them. A field that matches a
//! column exactly is left alone, and so is one whose name would match two columns that
//! differ only in case (quoted identifiers): those are matched exactly.

use std::collections::HashMap;

use arrow::datatypes::{DataType, Fields, Schema};

/// Up to this many fields, a key is matched exactly by comparing it with each name.
const LINEAR_LOOKUP_FIELDS: usize = 16;

/// The fields of one struct level (a schema's columns or a `STRUCT`'s fields) by exact
/// and by ASCII-lower-cased name, each with the shape of its value.
#[derive(Debug, Clone)]
pub struct FieldNames {
    /// Exact name → index into `shapes`.
    exact: HashMap<Vec<u8>, usize>,
    /// Lower-cased name → index of the field; `None` where two fields fold to the same
    /// name.
    folded: HashMap<Vec<u8>, Option<usize>>,
    /// Each field's own spelling and the shape of its value.
    fields: Vec<(Vec<u8>, Shape)>,
}

/// Where a value holds more field names to match.
#[derive(Debug, Clone)]
enum Shape {
    /// No objects with field names inside (scalars, and containers of scalars).
    Scalar,
    /// A struct: an object whose keys are field names.
    Object(FieldNames),
    /// An array whose elements have this shape.
    List(Box<Shape>),
    /// A map: an object whose keys are data and whose values have this shape.
    Map(Box<Shape>),
}

impl Shape {
    fn of(data_type: &DataType) -> Shape {
        let inner = match data_type {
            DataType::Struct(fields) => return Shape::Object(FieldNames::of(fields)),
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => Shape::List(Box::new(Shape::of(f.data_type()))),
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => Shape::Map(Box::new(Shape::of(kv[1].data_type()))),
                _ => Shape::Scalar,
            },
            _ => Shape::Scalar,
        };
        match &inner {
            Shape::List(s) | Shape::Map(s) if matches!(**s, Shape::Scalar) => Shape::Scalar,
            _ => inner,
        }
    }
}

impl FieldNames {
    /// The names of `schema`'s columns, and of their nested struct fields.
    pub fn new(schema: &Schema) -> Self {
        Self::of(schema.fields())
    }

    fn of(fields: &Fields) -> Self {
        let mut exact = HashMap::new();
        let mut folded: HashMap<Vec<u8>, Option<usize>> = HashMap::new();
        let mut spelled = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            let name = field.name().as_bytes().to_vec();
            exact.insert(name.clone(), i);
            folded.entry(name.to_ascii_lowercase()).and_modify(|v| *v = None).or_insert(Some(i));
            spelled.push((name, Shape::of(field.data_type())));
        }
        FieldNames { exact, folded, fields: spelled }
    }

    /// The field a JSON key names, and its spelling when the key must be rewritten.
    fn resolve(&self, key: &[u8]) -> Option<(&Shape, Option<&[u8]>)> {
        // Few columns (the usual case): comparing the names beats hashing the key.
        if self.fields.len() <= LINEAR_LOOKUP_FIELDS {
            if let Some((_, shape)) = self.fields.iter().find(|(name, _)| name.as_slice() == key) {
                return Some((shape, None));
            }
        } else if let Some(&i) = self.exact.get(key) {
            return Some((&self.fields[i].1, None));
        }
        match self.folded.get(&key.to_ascii_lowercase()) {
            Some(&Some(i)) if self.fields[i].0.len() == key.len() => Some((&self.fields[i].1, Some(&self.fields[i].0))),
            _ => None,
        }
    }

    /// `input` (one or more JSON values separated by whitespace) with the field names of
    /// its objects spelled as the columns are, at every depth. Borrowed when nothing
    /// changes. Scanning stops at the first thing that is not well-formed JSON: the
    /// decoder then reports it, and the values after it are decoded one at a time.
    pub fn normalize<'a>(&self, input: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let mut patches: Vec<(usize, &[u8])> = Vec::new();
        let mut scan = Scanner { bytes: input, at: 0 };
        loop {
            scan.skip_whitespace();
            if scan.at >= input.len() {
                break;
            }
            if scan.object(self, &mut patches).is_none() {
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

    /// An object whose keys are `names`' fields; records in `patches` each key to
    /// respell (its offset and the field's spelling) and walks into the values that hold
    /// more names. `None` when the text is not a well-formed object.
    fn object<'n>(&mut self, names: &'n FieldNames, patches: &mut Vec<(usize, &'n [u8])>) -> Option<()> {
        self.members(patches, |key| names.resolve(key))
    }

    /// An object's members: `field(key)` gives the shape of a key's value and the key's
    /// new spelling, `None` for a key that names nothing (its value is skipped). Keys
    /// with escapes are never respelled.
    fn members<'n>(
        &mut self,
        patches: &mut Vec<(usize, &'n [u8])>,
        field: impl Fn(&[u8]) -> Option<(&'n Shape, Option<&'n [u8]>)>,
    ) -> Option<()> {
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
            let shape = if escaped { None } else { field(&self.bytes[start..self.at - 1]) };
            self.skip_whitespace();
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            self.skip_whitespace();
            match shape {
                Some((shape, respell)) => {
                    if let Some(name) = respell {
                        patches.push((start, name));
                    }
                    self.shaped(shape, patches)?;
                }
                None => self.value()?,
            }
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

    /// A value of `shape`: walked into where it holds field names, skipped otherwise
    /// (also when the JSON does not have the shape: the decoder reports that).
    fn shaped<'n>(&mut self, shape: &'n Shape, patches: &mut Vec<(usize, &'n [u8])>) -> Option<()> {
        match (shape, self.peek()?) {
            (Shape::Object(names), b'{') => self.object(names, patches),
            (Shape::Map(values), b'{') => self.members(patches, |_| Some((&**values, None))),
            (Shape::List(elements), b'[') => {
                self.at += 1;
                self.skip_whitespace();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip_whitespace();
                    self.shaped(elements, patches)?;
                    self.skip_whitespace();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => self.value(),
        }
    }

    /// A string; returns the offset after its opening quote and whether it holds
    /// escapes, and leaves the cursor after its closing quote. A raw line feed ends the
    /// scan (JSON strings cannot hold one; the value is malformed, and the values after
    /// it, one per line, must not be read as part of this string).
    fn string(&mut self) -> Option<(usize, bool)> {
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        let start = self.at;
        let mut escaped = false;
        loop {
            // Jump to the next quote, backslash or line break.
            let rest = self.bytes.get(self.at..)?;
            self.at += memchr::memchr3(b'"', b'\\', b'\n', rest).unwrap_or(rest.len());
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some((start, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                _ => return None,
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
    fn nested_struct_fields_take_their_spelling_at_every_depth() {
        use std::sync::Arc;
        let inner = Fields::from(vec![Field::new("city", DataType::Utf8, true), Field::new("zip", DataType::Int32, true)]);
        let item = Arc::new(Field::new("item", DataType::Struct(inner.clone()), true));
        let entries =
            Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Struct(inner.clone()), true)]);
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("address", DataType::Struct(inner.clone()), true),
            Field::new("history", DataType::List(item), true),
            Field::new("by_name", DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false), true),
            Field::new("tags", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        ]);
        let n = FieldNames::new(&schema);
        assert_eq!(
            normalized(
                &n,
                r#"{"ID": 1, "ADDRESS": {"CITY": "x", "Zip": 2, "OTHER": {"CITY": 1}}, "HISTORY": [{"CITY": "y"}, null, {"ZIP": 3}], "BY_NAME": {"HOME": {"CITY": "z"}}, "TAGS": ["CITY"]}"#
            ),
            r#"{"id": 1, "address": {"city": "x", "zip": 2, "OTHER": {"CITY": 1}}, "history": [{"city": "y"}, null, {"zip": 3}], "by_name": {"HOME": {"city": "z"}}, "tags": ["CITY"]}"#
        );
        // A value without the declared shape is skipped whole; the decoder reports it.
        assert_eq!(
            normalized(&n, r#"{"ADDRESS": [{"CITY": 1}], "HISTORY": {"CITY": 1}}"#),
            r#"{"address": [{"CITY": 1}], "history": {"CITY": 1}}"#
        );
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
        assert_eq!(normalized(&n, "{\"ID\" 1}"), "{\"ID\" 1}");
        assert_eq!(normalized(&n, "{\"ID\": "), "{\"id\": ");
    }
}
