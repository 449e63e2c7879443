//! String functions whose indexing differs between DataFusion (PostgreSQL's rules) and
//! ksqlDB / Flink, registered under DataFusion's names so that both `SUBSTRING(s, 2, 3)`
//! and `SUBSTRING(s FROM 2 FOR 3)` reach them.
//!
//! Positions count characters from 1. Rules (ksqlDB's `Substring`, `Instr` and `InitCap`
//! UDFs; Flink's `SUBSTRING` agrees on them):
//!
//! - `SUBSTRING(s, pos [, len])`: `pos` 0 is the start, a negative `pos` counts from the
//!   end (`SUBSTRING('abcdef', -2)` is `ef`), a `pos` past either end is clamped to it, a
//!   negative `len` gives `''`. PostgreSQL instead counts `pos` 0 and below as characters
//!   before the start (`substr('abc', 0, 2)` is `a`; ksqlDB gives `ab`). Any NULL
//!   argument gives NULL.
//! - `INSTR(s, sub [, pos [, occurrence]])`: the position of the `occurrence`-th `sub` in
//!   `s` searched from `pos` (a negative `pos` searches backwards from that many
//!   characters before the end); 0 when not found, when `|pos|` exceeds the length, or
//!   when `s` or `sub` is NULL (ksqlDB returns 0 there, not NULL). INT.
//! - `KSQL_INITCAP(s)` (ksqlDB's `INITCAP`, planned under this name for ksqlDB
//!   statements): words are runs of non-whitespace, each upper-cased at its first
//!   character and lower-cased after it; leading whitespace is dropped, as ksqlDB's
//!   regex-based implementation does. Flink's `INITCAP` (words of letters and digits,
//!   DataFusion's) stays `INITCAP`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Int32Array, StringArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, plan_err, Result as DfResult};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// `SUBSTRING` / `SUBSTR` with ksqlDB's indexing (see the module docs). Strings give
/// VARCHAR (Utf8); BYTES (Binary) give BYTES, indexed by byte.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Substring {
    signature: Signature,
    aliases: Vec<String>,
}

impl Substring {
    /// The function, ready to register in place of DataFusion's `substr`.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(Substring { signature: Signature::variadic_any(Volatility::Immutable), aliases: vec!["substring".to_string()] })
    }
}

/// ksqlDB's start index (0-based, clamped) for a 1-based, possibly negative `pos`.
fn start_index(length: i64, pos: i64) -> i64 {
    if pos < 0 {
        (length + pos).max(0)
    } else {
        (pos - 1).min(length).max(0)
    }
}

/// The 0-based `(start, end)` range of `SUBSTRING` over a value of `length` units.
fn substring_range(length: usize, pos: i64, len: Option<i64>) -> (usize, usize) {
    let length = length as i64;
    let start = start_index(length, pos);
    let end = match len {
        None => length,
        Some(len) => start.saturating_add(len).min(length).max(start),
    };
    (start as usize, end as usize)
}

/// Argument `i` as Int64 values (NULL stays NULL), or `None` when absent.
fn int_arg(arrays: &[ArrayRef], i: usize, name: &str) -> DfResult<Option<arrow::array::Int64Array>> {
    match arrays.get(i) {
        None => Ok(None),
        Some(a) if a.data_type().is_integer() || a.data_type() == &DataType::Null => {
            Ok(Some(arrow::compute::cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().clone()))
        }
        Some(a) => exec_err!("{name} takes an INTEGER in argument {}, not {}", i + 1, a.data_type()),
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null)
}

impl ScalarUDFImpl for Substring {
    fn name(&self) -> &str {
        "substr"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args {
            [s, rest @ ..] if (1..=2).contains(&rest.len()) && rest.iter().all(|t| t.is_integer() || t == &DataType::Null) => {
                if is_string(s) {
                    Ok(DataType::Utf8)
                } else if matches!(s, DataType::Binary | DataType::LargeBinary | DataType::BinaryView) {
                    Ok(DataType::Binary)
                } else {
                    plan_err!("SUBSTRING takes a VARCHAR or BYTES value, not {s}")
                }
            }
            _ => plan_err!("SUBSTRING takes (value, position) or (value, position, length), positions as INTEGER"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(value) = arrays.first() else { return exec_err!("SUBSTRING needs a value") };
        let Some(pos) = int_arg(&arrays, 1, "SUBSTRING")? else { return exec_err!("SUBSTRING needs a position") };
        let len = int_arg(&arrays, 2, "SUBSTRING")?;
        let len_at = |row: usize| -> Option<Option<i64>> {
            match &len {
                None => Some(None),
                Some(l) if l.is_null(row) => None,
                Some(l) => Some(Some(l.value(row))),
            }
        };
        let out: ArrayRef = if is_string(value.data_type()) {
            let strings = arrow::compute::cast(value, &DataType::Utf8)?;
            let strings = strings.as_string::<i32>();
            let out: StringArray = (0..strings.len())
                .map(|row| {
                    if strings.is_null(row) || pos.is_null(row) {
                        return None;
                    }
                    let len = len_at(row)?;
                    let s = strings.value(row);
                    let chars = s.chars().count();
                    let (start, end) = substring_range(chars, pos.value(row), len);
                    Some(s.chars().skip(start).take(end - start).collect::<String>())
                })
                .collect();
            Arc::new(out)
        } else {
            let bytes = arrow::compute::cast(value, &DataType::Binary)?;
            let bytes = bytes.as_binary::<i32>();
            let out: BinaryArray = (0..bytes.len())
                .map(|row| {
                    if bytes.is_null(row) || pos.is_null(row) {
                        return None;
                    }
                    let len = len_at(row)?;
                    let b = bytes.value(row);
                    let (start, end) = substring_range(b.len(), pos.value(row), len);
                    Some(b[start..end].to_vec())
                })
                .collect();
            Arc::new(out)
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `INSTR` with ksqlDB's position and occurrence arguments (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Instr {
    signature: Signature,
}

impl Instr {
    /// The function, ready to register in place of DataFusion's `instr`.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(Instr { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

/// ksqlDB's `INSTR` over characters: 1-based position, 0 when not found.
fn instr(s: &[char], sub: &[char], pos: i64, occurrence: i64) -> i32 {
    let n = s.len() as i64;
    if pos.abs() > n || pos == 0 || occurrence < 1 {
        return 0;
    }
    let matches_at = |i: usize| s.len() >= i + sub.len() && s[i..i + sub.len()] == *sub;
    let mut seen = 0;
    if pos > 0 {
        for i in (pos - 1) as usize..s.len() {
            if matches_at(i) {
                seen += 1;
                if seen == occurrence {
                    return i as i32 + 1;
                }
            }
        }
    } else {
        // Backwards: the match must end at or before the character `-pos` from the end.
        let last_end = (n + pos + 1) as usize;
        for end in (sub.len()..=last_end).rev() {
            if matches_at(end - sub.len()) {
                seen += 1;
                if seen == occurrence {
                    return (end - sub.len()) as i32 + 1;
                }
            }
        }
    }
    0
}

impl ScalarUDFImpl for Instr {
    fn name(&self) -> &str {
        "instr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args {
            [s, sub, rest @ ..]
                if is_string(s) && is_string(sub) && rest.len() <= 2 && rest.iter().all(|t| t.is_integer() || t == &DataType::Null) =>
            {
                Ok(DataType::Int32)
            }
            _ => plan_err!("INSTR takes (string, substring [, position [, occurrence]]), positions as INTEGER"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [s, sub, ..] = arrays.as_slice() else { return exec_err!("INSTR needs a string and a substring") };
        let s = arrow::compute::cast(s, &DataType::Utf8)?;
        let sub = arrow::compute::cast(sub, &DataType::Utf8)?;
        let (s, sub) = (s.as_string::<i32>(), sub.as_string::<i32>());
        let pos = int_arg(&arrays, 2, "INSTR")?;
        let occurrence = int_arg(&arrays, 3, "INSTR")?;
        let int_at = |a: &Option<arrow::array::Int64Array>, row: usize| match a {
            Some(a) if a.is_valid(row) => a.value(row),
            _ => 1,
        };
        let out: Int32Array = (0..s.len())
            .map(|row| {
                if s.is_null(row) || sub.is_null(row) {
                    return Some(0);
                }
                let chars: Vec<char> = s.value(row).chars().collect();
                let needle: Vec<char> = sub.value(row).chars().collect();
                Some(instr(&chars, &needle, int_at(&pos, row), int_at(&occurrence, row)))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// ksqlDB's `INITCAP` (see the module docs), registered as `ksql_initcap`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KsqlInitcap {
    signature: Signature,
}

impl KsqlInitcap {
    /// The name ksqlDB statements' `INITCAP` is planned under.
    pub const NAME: &'static str = "ksql_initcap";

    /// The function, ready to register.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(KsqlInitcap { signature: Signature::uniform(1, vec![DataType::Utf8], Volatility::Immutable) })
    }
}

/// Each run of non-whitespace (and the whitespace after it) capitalised; leading
/// whitespace dropped.
fn ksql_initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_word_start = true;
    for c in s.trim_start().chars() {
        if c.is_whitespace() {
            at_word_start = true;
            out.push(c);
        } else if at_word_start {
            at_word_start = false;
            out.extend(c.to_lowercase().flat_map(char::to_uppercase));
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

impl ScalarUDFImpl for KsqlInitcap {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(s) = arrays.first() else { return exec_err!("INITCAP needs a string") };
        let s = arrow::compute::cast(s, &DataType::Utf8)?;
        let out: StringArray = s.as_string::<i32>().iter().map(|v| v.map(ksql_initcap)).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn substring(s: &str, pos: i64, len: Option<i64>) -> String {
        let chars = s.chars().count();
        let (start, end) = substring_range(chars, pos, len);
        s.chars().skip(start).take(end - start).collect()
    }

    /// ksqlDB's substring.json cases and its `Substring` clamping rules.
    #[test]
    fn substring_follows_ksqldb() {
        assert_eq!(substring("some_string", 6, None), "string");
        assert_eq!(substring("another", 6, None), "er");
        assert_eq!(substring("short", 6, None), "");
        assert_eq!(substring("some_string", 6, Some(3)), "str");
        assert_eq!(substring("some string", 0, Some(2)), "so");
        assert_eq!(substring("abcdef", -2, None), "ef");
        assert_eq!(substring("abcdef", -10, Some(2)), "ab");
        assert_eq!(substring("abcdef", 2, Some(-1)), "");
        assert_eq!(substring("héllo", 2, Some(2)), "él");
    }

    /// ksqlDB's InstrTest and instr.json cases.
    #[test]
    fn instr_follows_ksqldb() {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        let at = |s: &str, sub: &str, pos: i64, occ: i64| instr(&chars(s), &chars(sub), pos, occ);
        assert_eq!(at("CORPORATE FLOOR", "OR", 1, 1), 2);
        assert_eq!(at("CORPORATE FLOOR", "OR", 3, 1), 5);
        assert_eq!(at("CORPORATE FLOOR", "OR", 3, 2), 14);
        assert_eq!(at("CORPORATE FLOOR", "OR", -1, 1), 14);
        assert_eq!(at("CORPORATE FLOOR", "OR", -3, 1), 5);
        assert_eq!(at("CORPORATE FLOOR", "OR", -3, 2), 2);
        assert_eq!(at("CORPORATE FLOOR", "ABC", 1, 1), 0);
        assert_eq!(at("CORPORATE FLOOR", "OR", 100, 1), 0);
        assert_eq!(at("CORPORATE FLOOR", "OR", -100, 1), 0);
        assert_eq!(at("should I stay or should I go", "or", 1, 1), 15);
        assert_eq!(at("corporate floor", "or", -4, 1), 5);
        assert_eq!(at("corporate floor", "or", -4, 2), 2);
        assert_eq!(at("short", "or", 4, 1), 0);
    }

    /// ksqlDB's INITCAP: words split on whitespace only.
    #[test]
    fn initcap_follows_ksqldb() {
        assert_eq!(ksql_initcap("the quick BROWN fox"), "The Quick Brown Fox");
        assert_eq!(ksql_initcap("hello-world  again"), "Hello-world  Again");
        assert_eq!(ksql_initcap("  lead"), "Lead");
        assert_eq!(ksql_initcap(""), "");
    }
}
