//! Predicates of tree nodes and segments (`SimplePredicate`, `CompoundPredicate`,
//! `SimpleSetPredicate`, `True`, `False`), compiled with their fields resolved to slots,
//! evaluated per row in PMML's three-valued logic (`None` = UNKNOWN: a missing input).

use crate::error::Result;
use crate::expr::{same_value, Scope};
use std::borrow::Cow;

use arrow::array::{Array, StringArray};
use arrow::buffer::NullBuffer;

use crate::values::{format_number, Values};
use crate::xml::Element;

/// A compiled predicate. Field references are slots into the evaluator's column list.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    True,
    False,
    /// A comparison of a number field with a constant.
    Num {
        slot: usize,
        op: Op,
        value: f64,
    },
    /// A comparison of a text field with a constant (`number`: the constant read as a
    /// number, when it is one, so that `1.0` equals `1`).
    Str {
        slot: usize,
        op: Op,
        value: String,
        number: Option<f64>,
    },
    IsMissing {
        slot: usize,
        missing: bool,
    },
    /// `SimpleSetPredicate`: the field's value is (or is not) in the set.
    InSet {
        slot: usize,
        values: Vec<String>,
        is_in: bool,
    },
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Xor(Vec<Predicate>),
    /// The first of its predicates that is not UNKNOWN decides.
    Surrogate(Vec<Predicate>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    NotEqual,
    LessThan,
    LessOrEqual,
    GreaterThan,
    GreaterOrEqual,
}

/// Field names of the predicates of one model, each given a slot once.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    /// Field name per slot.
    pub names: Vec<String>,
}

impl Slots {
    /// The slot of `name`, given one if it has none.
    pub fn slot(&mut self, name: &str) -> usize {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        }
    }
}

/// The names of the predicate elements.
pub const PREDICATES: &[&str] = &["SimplePredicate", "CompoundPredicate", "SimpleSetPredicate", "True", "False"];

/// The predicate child of `element` (a `Node` or a `Segment`).
///
/// Errors: there is none.
pub fn child_predicate(element: &Element) -> Result<&Element> {
    element
        .children
        .iter()
        .find(|c| PREDICATES.contains(&c.name.as_str()))
        .ok_or_else(|| element.invalid(format!("{} has no predicate", element.name)))
}

/// A predicate's view of one field's values for a batch, resolved once per batch: numbers
/// as a slice with their validity, or text.
#[derive(Debug, Clone, Copy)]
pub enum Column<'a> {
    /// Numbers; a null in the validity is a missing value.
    Num(&'a [f64], Option<&'a NullBuffer>),
    /// Text.
    Str(&'a StringArray),
}

impl<'a> Column<'a> {
    /// The view of `values`.
    pub fn of(values: &'a Values) -> Column<'a> {
        match values {
            Values::Num(a) => Column::Num(a.values(), a.nulls()),
            Values::Str(a) => Column::Str(a),
        }
    }

    /// Whether row `i` is missing.
    #[inline]
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            Column::Num(_, nulls) => nulls.is_some_and(|n| n.is_null(i)),
            Column::Str(a) => a.is_null(i),
        }
    }

    /// Row `i` as a number (text that parses as one).
    #[inline]
    pub fn num(&self, i: usize) -> Option<f64> {
        match self {
            Column::Num(v, nulls) => (!nulls.is_some_and(|n| n.is_null(i))).then(|| v[i]),
            Column::Str(a) => (!a.is_null(i)).then(|| a.value(i).trim().parse().ok()).flatten(),
        }
    }

    /// Row `i` as text.
    #[inline]
    pub fn text(&self, i: usize) -> Option<Cow<'a, str>> {
        match self {
            Column::Num(..) => self.num(i).map(|v| Cow::Owned(format_number(v))),
            Column::Str(a) => (!a.is_null(i)).then(|| Cow::Borrowed(a.value(i))),
        }
    }
}

impl Predicate {
    /// Compiles `element` over `scope`, giving each field a slot in `slots`.
    ///
    /// Errors: an unknown field or operator, an unsupported element.
    pub fn compile(element: &Element, scope: &Scope, slots: &mut Slots) -> Result<Predicate> {
        Ok(match element.name.as_str() {
            "True" => Predicate::True,
            "False" => Predicate::False,
            "SimplePredicate" => {
                let field = element.required("field")?;
                let t = scope.get(field).copied().ok_or_else(|| element.invalid(format!("field \"{field}\" is not defined")))?;
                let slot = slots.slot(field);
                let op = match element.required("operator")? {
                    "isMissing" => return Ok(Predicate::IsMissing { slot, missing: true }),
                    "isNotMissing" => return Ok(Predicate::IsMissing { slot, missing: false }),
                    "equal" => Op::Equal,
                    "notEqual" => Op::NotEqual,
                    "lessThan" => Op::LessThan,
                    "lessOrEqual" => Op::LessOrEqual,
                    "greaterThan" => Op::GreaterThan,
                    "greaterOrEqual" => Op::GreaterOrEqual,
                    other => return Err(element.unsupported(format!("operator=\"{other}\""))),
                };
                let value = element.required("value")?;
                match (t.is_numeric(), value.trim().parse::<f64>()) {
                    (true, Ok(v)) => Predicate::Num { slot, op, value: t.round(v) },
                    (true, Err(_)) => return Err(element.invalid(format!("value '{value}' of a numeric field is not a number"))),
                    (false, number) => Predicate::Str { slot, op, value: value.to_string(), number: number.ok() },
                }
            }
            "SimpleSetPredicate" => {
                let field = element.required("field")?;
                if !scope.contains_key(field) {
                    return Err(element.invalid(format!("field \"{field}\" is not defined")));
                }
                let slot = slots.slot(field);
                let is_in = match element.required("booleanOperator")? {
                    "isIn" => true,
                    "isNotIn" => false,
                    other => return Err(element.unsupported(format!("booleanOperator=\"{other}\""))),
                };
                let array = element.first("Array").ok_or_else(|| element.invalid("SimpleSetPredicate has no Array"))?;
                Predicate::InSet { slot, values: array_values(&array.text), is_in }
            }
            "CompoundPredicate" => {
                let parts = element
                    .children
                    .iter()
                    .filter(|c| PREDICATES.contains(&c.name.as_str()))
                    .map(|c| Predicate::compile(c, scope, slots))
                    .collect::<Result<Vec<_>>>()?;
                match element.required("booleanOperator")? {
                    "and" => Predicate::And(parts),
                    "or" => Predicate::Or(parts),
                    "xor" => Predicate::Xor(parts),
                    "surrogate" => Predicate::Surrogate(parts),
                    other => return Err(element.unsupported(format!("booleanOperator=\"{other}\""))),
                }
            }
            other => return Err(element.unsupported(other)),
        })
    }

    /// This predicate with each slot `s` renumbered to `map(s)`; `None` where `map` has
    /// no slot for one.
    pub fn with_slots(&self, map: &mut dyn FnMut(usize) -> Option<usize>) -> Option<Predicate> {
        let all = |parts: &[Predicate], map: &mut dyn FnMut(usize) -> Option<usize>| -> Option<Vec<Predicate>> {
            parts.iter().map(|p| p.with_slots(map)).collect()
        };
        Some(match self {
            Predicate::True => Predicate::True,
            Predicate::False => Predicate::False,
            Predicate::Num { slot, op, value } => Predicate::Num { slot: map(*slot)?, op: *op, value: *value },
            Predicate::Str { slot, op, value, number } => {
                Predicate::Str { slot: map(*slot)?, op: *op, value: value.clone(), number: *number }
            }
            Predicate::IsMissing { slot, missing } => Predicate::IsMissing { slot: map(*slot)?, missing: *missing },
            Predicate::InSet { slot, values, is_in } => Predicate::InSet { slot: map(*slot)?, values: values.clone(), is_in: *is_in },
            Predicate::And(p) => Predicate::And(all(p, map)?),
            Predicate::Or(p) => Predicate::Or(all(p, map)?),
            Predicate::Xor(p) => Predicate::Xor(all(p, map)?),
            Predicate::Surrogate(p) => Predicate::Surrogate(all(p, map)?),
        })
    }

    /// The predicate on row `i` of `columns` (one per slot): `None` is UNKNOWN.
    #[inline]
    pub fn eval(&self, columns: &[Column<'_>], i: usize) -> Option<bool> {
        match self {
            Predicate::True => Some(true),
            Predicate::False => Some(false),
            Predicate::Num { slot, op, value } => {
                let x = columns[*slot].num(i)?;
                Some(match op {
                    Op::Equal => x == *value,
                    Op::NotEqual => x != *value,
                    Op::LessThan => x < *value,
                    Op::LessOrEqual => x <= *value,
                    Op::GreaterThan => x > *value,
                    Op::GreaterOrEqual => x >= *value,
                })
            }
            Predicate::Str { slot, op, value, number } => {
                let x = columns[*slot].text(i)?;
                let x = x.as_ref();
                let equal = || x == value || number.is_some_and(|n| x.trim().parse::<f64>().is_ok_and(|v| v == n));
                Some(match op {
                    Op::Equal => equal(),
                    Op::NotEqual => !equal(),
                    Op::LessThan => x < value.as_str(),
                    Op::LessOrEqual => x <= value.as_str(),
                    Op::GreaterThan => x > value.as_str(),
                    Op::GreaterOrEqual => x >= value.as_str(),
                })
            }
            Predicate::IsMissing { slot, missing } => Some(columns[*slot].is_missing(i) == *missing),
            Predicate::InSet { slot, values, is_in } => {
                let x = columns[*slot].text(i)?;
                Some(values.iter().any(|v| same_value(&x, v)) == *is_in)
            }
            Predicate::And(parts) => {
                let mut unknown = false;
                for p in parts {
                    match p.eval(columns, i) {
                        Some(false) => return Some(false),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                (!unknown).then_some(true)
            }
            Predicate::Or(parts) => {
                let mut unknown = false;
                for p in parts {
                    match p.eval(columns, i) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                (!unknown).then_some(false)
            }
            Predicate::Xor(parts) => {
                let mut acc = false;
                for p in parts {
                    acc ^= p.eval(columns, i)?;
                }
                Some(acc)
            }
            Predicate::Surrogate(parts) => parts.iter().find_map(|p| p.eval(columns, i)),
        }
    }
}

/// The values of a PMML `Array`: space-separated, `"quoted strings"` with `\"` escapes.
pub fn array_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut value = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_split_on_spaces_and_keep_quoted_values() {
        assert_eq!(array_values(r#"a "b c" d "e \"f\"""#), vec!["a", "b c", "d", "e \"f\""]);
    }
}
