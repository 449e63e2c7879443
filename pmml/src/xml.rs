//! A small element tree of a PMML document, with the line of every element so that
//! errors can name it. PMML files are a few MB at most; the tree is read once, compiled
//! into the model structures, and dropped.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{PmmlError, Result};

/// One element: its local name (namespace prefix dropped), attributes, child elements,
/// text, and 1-based line.
#[derive(Debug, Clone, Default)]
pub struct Element {
    /// Local name, e.g. `RegressionModel`.
    pub name: String,
    /// Attributes in document order, values unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order (`Extension` elements are kept).
    pub children: Vec<Element>,
    /// Text directly inside the element, entities resolved, trimmed (for `Array` and
    /// `Constant`).
    pub text: String,
    /// 1-based line of the start tag.
    pub line: usize,
}

impl Element {
    /// The attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The attribute `name`, which the standard requires.
    ///
    /// Errors: it is missing.
    pub fn required(&self, name: &str) -> Result<&str> {
        self.attr(name).ok_or_else(|| self.invalid(format!("{} has no {name} attribute", self.name)))
    }

    /// The attribute `name` as a number, `default` when absent.
    ///
    /// Errors: present but not a number.
    pub fn number(&self, name: &str, default: f64) -> Result<f64> {
        match self.attr(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| self.invalid(format!("{}'s {name} is not a number: '{v}'", self.name))),
        }
    }

    /// The child elements called `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child element called `name`.
    pub fn first(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// An [`PmmlError::Invalid`] at this element.
    pub fn invalid(&self, message: impl Into<String>) -> PmmlError {
        PmmlError::Invalid { message: message.into(), line: self.line }
    }

    /// An [`PmmlError::Unsupported`] naming `what`, at this element.
    pub fn unsupported(&self, what: impl Into<String>) -> PmmlError {
        PmmlError::Unsupported { what: what.into(), line: self.line }
    }
}

/// The deepest nesting of elements accepted. Compiling walks the tree recursively; a
/// real model (scikit-learn trees are rarely 60 deep) stays far below it, and a document built to
/// exhaust the stack is refused.
pub const MAX_DEPTH: usize = 300;

/// Parses `text` into its root element.
///
/// Errors: the XML is not well formed, holds no element, or nests deeper than
/// [`MAX_DEPTH`].
pub fn parse(text: &str) -> Result<Element> {
    let mut reader = Reader::from_str(text);
    // Lines are counted on from the last position asked for (positions only grow, but
    // an error may ask for an earlier one: then it counts from the start).
    let counted = std::cell::Cell::new((0usize, 1usize));
    let line_at = |pos: u64| {
        let pos = (pos as usize).min(text.len());
        let (from, line) = match counted.get() {
            (at, line) if at <= pos => (at, line),
            _ => (0, 1),
        };
        let line = line + text.as_bytes()[from..pos].iter().filter(|b| **b == b'\n').count();
        counted.set((pos, line));
        line
    };
    // The `<` of the tag that ends at `end`.
    let tag_start = |end: u64| text[..(end as usize).min(text.len())].rfind('<').unwrap_or(0) as u64;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| PmmlError::Xml { line: line_at(reader.error_position()), message: e.to_string() })?;
        match event {
            Event::Start(start) if root.is_none() => {
                let line = line_at(tag_start(reader.buffer_position()));
                if stack.len() >= MAX_DEPTH {
                    return Err(PmmlError::Invalid { message: format!("elements are nested more than {MAX_DEPTH} deep"), line });
                }
                stack.push(element(&start, line)?)
            }
            Event::Empty(start) if root.is_none() => {
                let e = element(&start, line_at(tag_start(reader.buffer_position())))?;
                close(&mut stack, &mut root, e);
            }
            Event::End(_) => {
                if let Some(element) = stack.pop() {
                    close(&mut stack, &mut root, element);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.decode().map_err(|e| PmmlError::Xml { line: line_at(position), message: e.to_string() })?;
                    top.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = r.decode().map_err(|e| PmmlError::Xml { line: line_at(position), message: e.to_string() })?;
                    let c = match name.as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        other => other
                            .strip_prefix("#x")
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .or_else(|| other.strip_prefix('#').and_then(|d| d.parse().ok()))
                            .and_then(char::from_u32),
                    };
                    match c {
                        Some(c) => top.text.push(c),
                        None => return Err(PmmlError::Xml { line: line_at(position), message: format!("unknown entity &{name};") }),
                    }
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(PmmlError::Xml { line: line_at(text.len() as u64), message: "the document ends inside an element".into() });
    }
    root.ok_or(PmmlError::Xml { line: 1, message: "no element".into() })
}

/// The element a start tag opens, without children yet.
fn element(start: &quick_xml::events::BytesStart<'_>, line: usize) -> Result<Element> {
    let mut element = Element { line, name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(), ..Default::default() };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| PmmlError::Xml { line, message: e.to_string() })?;
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let value = attr.unescape_value().map_err(|e| PmmlError::Xml { line, message: e.to_string() })?.into_owned();
        element.attrs.push((key, value));
    }
    Ok(element)
}

fn close(stack: &mut [Element], root: &mut Option<Element>, mut element: Element) {
    let trimmed = element.text.trim();
    if trimmed.len() != element.text.len() {
        element.text = trimmed.to_string();
    }
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_attributes_text_and_lines() -> Result<()> {
        let doc = parse("<?xml version=\"1.0\"?>\n<PMML xmlns=\"http://www.dmg.org/PMML-4_4\">\n  <Array n=\"2\" type=\"string\">\"a b\" c</Array>\n  <Constant dataType=\"double\">1 &amp; 2</Constant>\n  <Empty x='1'/>\n</PMML>")?;
        assert_eq!(doc.name, "PMML");
        assert_eq!(doc.line, 2);
        assert_eq!(doc.children.len(), 3);
        assert_eq!(doc.children[0].text, "\"a b\" c");
        assert_eq!(doc.children[0].line, 3);
        assert_eq!(doc.children[1].text, "1 & 2");
        assert_eq!(doc.children[2].attr("x"), Some("1"));
        assert_eq!(doc.children[2].line, 5);
        assert!(doc.children[2].children.is_empty());
        Ok(())
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("<PMML>{}{}</PMML>", "<Node>".repeat(MAX_DEPTH), "</Node>".repeat(MAX_DEPTH));
        let e = parse(&deep).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, format!("elements are nested more than {MAX_DEPTH} deep (line 1)"));
        let fine = format!("<PMML>{}{}</PMML>", "<Node>".repeat(100), "</Node>".repeat(100));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn malformed_xml_names_its_line() {
        let e = parse("<PMML>\n<A>\n</B>\n</PMML>").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("not well-formed XML at line 3"), "{e}");
    }
}
