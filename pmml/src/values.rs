//! Field values of one batch, a column per field: numbers or strings, null where the
//! value is missing. PMML's integer, float and double fields are all held as f64 (a
//! `float` field's values rounded to f32 first, as scikit-learn's float32 trees see
//! them); boolean inputs become 1.0 and 0.0.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, StringArray};
use arrow::datatypes::DataType;

use crate::error::{PmmlError, Result};

/// One field's values for every row of a batch.
#[derive(Debug, Clone)]
pub enum Values {
    /// Numbers; null = missing.
    Num(Float64Array),
    /// Strings (categorical values); null = missing.
    Str(StringArray),
}

impl Values {
    /// Rows.
    pub fn len(&self) -> usize {
        match self {
            Values::Num(a) => a.len(),
            Values::Str(a) => a.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `i` is missing.
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            Values::Num(a) => a.is_null(i),
            Values::Str(a) => a.is_null(i),
        }
    }

    /// Row `i` as a number: a string that parses as one, `None` when missing or not a
    /// number.
    pub fn num(&self, i: usize) -> Option<f64> {
        match self {
            Values::Num(a) => (!a.is_null(i)).then(|| a.value(i)),
            Values::Str(a) => (!a.is_null(i)).then(|| a.value(i).trim().parse().ok()).flatten(),
        }
    }

    /// Row `i` as text (a number in its shortest form, `1` for 1.0).
    pub fn text(&self, i: usize) -> Option<String> {
        match self {
            Values::Num(a) => (!a.is_null(i)).then(|| format_number(a.value(i))),
            Values::Str(a) => (!a.is_null(i)).then(|| a.value(i).to_string()),
        }
    }

    /// The values as an Arrow array (Float64 or Utf8).
    pub fn to_array(&self) -> ArrayRef {
        match self {
            Values::Num(a) => Arc::new(a.clone()),
            Values::Str(a) => Arc::new(a.clone()),
        }
    }

    /// Values of an input column: numbers and booleans as numbers, strings as strings.
    ///
    /// Errors: a type a PMML field cannot hold (a list, a struct, binary).
    pub fn from_array(name: &str, array: &ArrayRef) -> Result<Values> {
        Ok(match array.data_type() {
            DataType::Utf8 => Values::Str(array.as_string::<i32>().clone()),
            DataType::LargeUtf8 | DataType::Utf8View => {
                Values::Str(arrow::compute::cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            DataType::Boolean => {
                let b = array.as_boolean();
                Values::Num(b.iter().map(|v| v.map(|v| if v { 1.0 } else { 0.0 })).collect())
            }
            t if t.is_numeric() => Values::Num(arrow::compute::cast(array, &DataType::Float64)?.as_primitive().clone()),
            other => return Err(PmmlError::Input(format!("input {name} is {other}, which a PMML field cannot hold"))),
        })
    }
}

/// A number as PMML writes category values: `1` for 1.0, `0.5` for 0.5.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The fields visible to a model: its inputs, the derived fields, and the outputs of
/// earlier models of a chain.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Rows of the batch.
    pub rows: usize,
    fields: HashMap<String, Values>,
}

impl Env {
    /// An environment of `rows` rows and no fields.
    pub fn new(rows: usize) -> Env {
        Env { rows, fields: HashMap::new() }
    }

    /// The values of field `name`.
    ///
    /// Errors: no such field (the document refers to a field it never defines).
    pub fn get(&self, name: &str) -> Result<&Values> {
        self.fields.get(name).ok_or_else(|| PmmlError::Input(format!("field \"{name}\" has no values")))
    }

    /// Whether field `name` has values.
    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// Sets the values of `name`.
    pub fn set(&mut self, name: &str, values: Values) {
        self.fields.insert(name.to_string(), values);
    }
}
