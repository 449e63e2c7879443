//! Flink's `TO_TIMESTAMP(string [, format])`, in place of DataFusion's `to_timestamp`
//! (which reads chrono patterns, returns nanoseconds and fails the query on a bad value).
//!
//! Flink (`DateTimeUtils.parseTimestampData`): `string` read with the Java
//! `DateTimeFormatter` pattern `format` (default `yyyy-MM-dd HH:mm:ss`, fractions of a
//! second allowed) as a `TIMESTAMP(3)` without time zone. A value the pattern does not
//! read is tried as `yyyy-[M]M-[d]d[ HH:mm:ss[.fff]]` (Java's `Timestamp.valueOf` /
//! `Date.valueOf`), and is NULL when that fails too: one bad row never fails the query.
//! A number (which Flink refuses) is read as epoch seconds, as DataFusion's function did,
//! so statements written for it keep their meaning.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::format::java_time::{java_to_chrono, CompiledFormat, DateMemo};

/// Flink's `TO_TIMESTAMP`: `(VARCHAR [, VARCHAR pattern]) -> TIMESTAMP(3)` (ms, no zone).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToTimestamp {
    signature: Signature,
}

impl ToTimestamp {
    /// The function, ready to register as a [`ScalarUDF`] (it replaces DataFusion's).
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(ToTimestamp { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null)
}

/// Milliseconds since the epoch of `value` read as Java's `Timestamp.valueOf` or
/// `Date.valueOf` would (`2026-1-2 10:00:00.5`, `2026-01-02T10:00:00`, `2026-01-02`).
fn parse_default(value: &str) -> Option<i64> {
    static FORMATS: std::sync::LazyLock<Vec<CompiledFormat>> = std::sync::LazyLock::new(|| {
        ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]
            .iter()
            .filter_map(|f| CompiledFormat::new(f).ok())
            .collect()
    });
    FORMATS.iter().find_map(|f| f.parse_ms(value))
}

impl ScalarUDFImpl for ToTimestamp {
    fn name(&self) -> &str {
        "to_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args {
            [t] if t.is_integer() || t.is_floating() => Ok(DataType::Timestamp(TimeUnit::Millisecond, None)),
            [t] | [t, _] if !is_text(t) => {
                plan_err!("TO_TIMESTAMP reads a string, not {t}; for epoch seconds or milliseconds use TO_TIMESTAMP_LTZ(value, 0) or TO_TIMESTAMP_LTZ(value, 3)")
            }
            [_, f] if !is_text(f) => plan_err!("TO_TIMESTAMP's format is a Java date-time pattern such as 'yyyy-MM-dd HH:mm:ss', not {f}"),
            [_] | [_, _] => Ok(DataType::Timestamp(TimeUnit::Millisecond, None)),
            _ => plan_err!("TO_TIMESTAMP takes a string and an optional pattern: TO_TIMESTAMP(paid_at, 'yyyy-MM-dd HH:mm:ss')"),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let data_type = self.return_type(&types)?;
        // A constant pattern is checked when the statement is planned.
        if let Some(Some(ScalarValue::Utf8(Some(p)) | ScalarValue::LargeUtf8(Some(p)) | ScalarValue::Utf8View(Some(p)))) =
            args.scalar_arguments.get(1)
        {
            if let Err(e) = java_to_chrono(p) {
                return plan_err!("{e} of TO_TIMESTAMP");
            }
        }
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(value) = args.args.first() else { return exec_err!("TO_TIMESTAMP needs an argument") };
        let value = value.to_array(args.number_rows)?;
        if value.data_type().is_integer() || value.data_type().is_floating() {
            // Epoch seconds (DataFusion's reading), to milliseconds; NULL when out of range.
            let seconds = arrow::compute::cast(&value, &DataType::Float64)?;
            let out: TimestampMillisecondArray = seconds
                .as_primitive::<arrow::datatypes::Float64Type>()
                .iter()
                .map(|s| s.map(|s| s * 1000.0).filter(|ms| ms.is_finite() && ms.abs() < 9.2e18).map(|ms| ms.floor() as i64))
                .collect();
            return Ok(ColumnarValue::Array(Arc::new(out)));
        }
        let values = arrow::compute::cast(&value, &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let out: TimestampMillisecondArray = match args.args.get(1) {
            None => values.iter().map(|v| v.and_then(parse_default)).collect(),
            Some(ColumnarValue::Scalar(s)) => match s.cast_to(&DataType::Utf8)? {
                ScalarValue::Utf8(Some(pattern)) => {
                    let format = match java_to_chrono(&pattern).and_then(|f| CompiledFormat::new(&f)) {
                        Ok(f) => f,
                        Err(e) => return exec_err!("{e} of TO_TIMESTAMP"),
                    };
                    let mut memo = DateMemo::default();
                    values.iter().map(|v| v.and_then(|v| format.parse_ms_memo(v, &mut memo).or_else(|| parse_default(v)))).collect()
                }
                _ => std::iter::repeat_n(None, values.len()).collect(),
            },
            Some(ColumnarValue::Array(patterns)) => {
                let patterns = arrow::compute::cast(patterns, &DataType::Utf8)?;
                let patterns = patterns.as_string::<i32>();
                let mut last: Option<(String, Option<CompiledFormat>)> = None;
                let mut out = Vec::with_capacity(values.len());
                for (v, p) in values.iter().zip(patterns.iter()) {
                    let (Some(v), Some(p)) = (v, p) else {
                        out.push(None);
                        continue;
                    };
                    if last.as_ref().is_none_or(|(l, _)| l != p) {
                        last = Some((p.to_string(), java_to_chrono(p).and_then(|f| CompiledFormat::new(&f)).ok()));
                    }
                    let format = last.as_ref().and_then(|(_, f)| f.as_ref());
                    out.push(format.and_then(|f| f.parse_ms(v)).or_else(|| parse_default(v)));
                }
                out.into_iter().collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_patterns_and_fallbacks() {
        let iso = java_to_chrono("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").and_then(|f| CompiledFormat::new(&f)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(iso.parse_ms("2026-01-01T00:00:01.500Z"), Some(1_767_225_601_500));
        assert_eq!(parse_default("2026-01-01 00:00:01"), Some(1_767_225_601_000));
        assert_eq!(parse_default("2026-1-1 00:00:01.25"), Some(1_767_225_601_250));
        assert_eq!(parse_default("2026-01-01"), Some(1_767_225_600_000));
        assert_eq!(parse_default("soon"), None);
    }
}
