//! How a sink writes DATE, TIME, TIMESTAMP and TIMESTAMP_LTZ values: each dialect as
//! its own formats write them, so a consumer of Flink's or ksqlDB's topics reads Eddy's
//! unchanged.
//!
//! - Flink (`json` and `csv` formats, `'json.timestamp-format.standard'`, Flink's
//!   `TimeFormats`): `SQL` (the default) writes a TIMESTAMP as `2020-10-03 14:44:42`,
//!   the fraction of a second only when it is not zero and without trailing zeros
//!   (`14:44:42.5`); `ISO-8601` puts a `T` between date and time. A TIMESTAMP_LTZ gets a
//!   `Z`. TIME is `14:44:42[.5]`, DATE `2020-10-03`.
//! - ksqlDB (KLIP-43, KLIP-46; Kafka Connect's logical types): a TIMESTAMP is the number
//!   of milliseconds since the epoch, TIME the milliseconds since midnight, DATE the days
//!   since the epoch, as numbers in JSON and DELIMITED alike.
//!
//! Only top-level columns are rewritten; values nested in ARRAY, MAP or ROW keep
//! Eddy's ISO-8601 text.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, Time32MillisecondType, TimeUnit, TimestampMillisecondType};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::Result;

/// How a sink writes temporal values (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampStyle {
    /// Eddy's own ISO-8601 with milliseconds (`2020-10-03T14:44:42.000`): the webhook
    /// sink and the record keys of ksqlDB's key formats.
    #[default]
    Iso,
    /// Flink, `'json.timestamp-format.standard' = 'SQL'` (default): `2020-10-03 14:44:42.5`.
    FlinkSql,
    /// Flink, `'json.timestamp-format.standard' = 'ISO-8601'`: `2020-10-03T14:44:42.5`.
    FlinkIso,
    /// ksqlDB: milliseconds (TIMESTAMP, TIME) and days (DATE) as numbers.
    EpochNumbers,
}

impl TimestampStyle {
    /// The style of a sink: ksqlDB's for a relation declared in ksqlDB's form, else
    /// Flink's with its `'json.timestamp-format.standard'` (`iso`).
    pub fn of_sink(ksql: bool, iso: bool) -> Self {
        match (ksql, iso) {
            (true, _) => TimestampStyle::EpochNumbers,
            (false, true) => TimestampStyle::FlinkIso,
            (false, false) => TimestampStyle::FlinkSql,
        }
    }

    /// `batch` with its top-level DATE, TIME and TIMESTAMP columns rewritten in this
    /// style (text for Flink, numbers for ksqlDB); the columns named in `ltz` are
    /// TIMESTAMP_LTZ. Returns the batch unchanged (no copy) when it has none or the style
    /// is [`TimestampStyle::Iso`].
    ///
    /// Errors: none in practice (the rewritten columns have the batch's row count).
    pub fn apply(self, batch: &RecordBatch, ltz: &[String]) -> Result<RecordBatch> {
        if self == TimestampStyle::Iso || !batch.schema().fields().iter().any(|f| temporal(f.data_type())) {
            return Ok(batch.clone());
        }
        let schema = batch.schema();
        let mut fields = Vec::with_capacity(schema.fields().len());
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            let rewritten = self.column(column, ltz.iter().any(|n| n == field.name()));
            match rewritten {
                Some(c) => {
                    fields.push(Field::new(field.name(), c.data_type().clone(), true).with_metadata(field.metadata().clone()));
                    columns.push(c);
                }
                None => {
                    fields.push(field.as_ref().clone());
                    columns.push(column.clone());
                }
            }
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        Ok(RecordBatch::try_new_with_options(schema, columns, &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())))?)
    }

    /// `column` written in this style (`zone`: it is a TIMESTAMP_LTZ); `None` when this
    /// style leaves it as it is (not temporal, [`TimestampStyle::Iso`], a Flink DATE).
    pub fn column(self, column: &ArrayRef, zone: bool) -> Option<ArrayRef> {
        match (self, column.data_type()) {
            (TimestampStyle::Iso, _) => None,
            (_, t) if !temporal(t) => None,
            (TimestampStyle::EpochNumbers, DataType::Timestamp(..)) => {
                let a = column.as_primitive::<TimestampMillisecondType>();
                Some(Arc::new(Int64Array::new(a.values().clone(), a.nulls().cloned())))
            }
            (TimestampStyle::EpochNumbers, DataType::Date32) => {
                let a = column.as_primitive::<Date32Type>();
                Some(Arc::new(Int32Array::new(a.values().clone(), a.nulls().cloned())))
            }
            (TimestampStyle::EpochNumbers, _) => {
                let a = column.as_primitive::<Time32MillisecondType>();
                Some(Arc::new(Int32Array::new(a.values().clone(), a.nulls().cloned())))
            }
            (_, DataType::Timestamp(..)) => {
                let sep = if self == TimestampStyle::FlinkIso { 'T' } else { ' ' };
                let a = column.as_primitive::<TimestampMillisecondType>();
                Some(Arc::new(a.iter().map(|v| v.and_then(|ms| flink_timestamp(ms, sep, zone))).collect::<StringArray>()))
            }
            (_, DataType::Time32(_)) => {
                let a = column.as_primitive::<Time32MillisecondType>();
                Some(Arc::new(a.iter().map(|v| v.map(|ms| flink_time(i64::from(ms)))).collect::<StringArray>()))
            }
            // DATE: arrow's `yyyy-MM-dd` is Flink's.
            _ => None,
        }
    }
}

/// Whether Eddy keeps `t` as a DATE, TIME or TIMESTAMP (milliseconds, days).
fn temporal(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date32 | DataType::Time32(TimeUnit::Millisecond))
}

/// `ms` since the epoch as Flink writes a TIMESTAMP(3): date, `sep`, time, the fraction
/// only when not zero (trailing zeros dropped), `Z` for a TIMESTAMP_LTZ (`zone`).
/// `None` outside chrono's range.
fn flink_timestamp(ms: i64, sep: char, zone: bool) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_millis(ms)?.naive_utc();
    let mut text = format!("{}{sep}{}", t.format("%Y-%m-%d"), t.format("%H:%M:%S"));
    push_fraction(&mut text, ms.rem_euclid(1000));
    if zone {
        text.push('Z');
    }
    Some(text)
}

/// Milliseconds since midnight as Flink writes a TIME(3): `HH:mm:ss[.f]`.
fn flink_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let mut text = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    push_fraction(&mut text, ms.rem_euclid(1000));
    text
}

/// Appends `.` and the milliseconds `millis` (0..1000) without trailing zeros; nothing for 0.
fn push_fraction(text: &mut String, millis: i64) {
    if millis != 0 {
        let digits = format!("{millis:03}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Date32Array, Time32MillisecondArray, TimestampMillisecondArray};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("ltz", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", DataType::Time32(TimeUnit::Millisecond), true),
            Field::new("n", DataType::Int32, true),
        ]));
        // 2020-10-03T14:44:42Z and .5 s later; 2020-10-03 is day 18538.
        let ts = TimestampMillisecondArray::from(vec![Some(1_601_736_282_000), Some(1_601_736_282_500), None]);
        let ltz = TimestampMillisecondArray::from(vec![Some(1_601_736_282_120), None, Some(0)]);
        let day = Date32Array::from(vec![Some(18_538), None, Some(0)]);
        let at = Time32MillisecondArray::from(vec![Some(53_082_000), Some(53_082_010), None]);
        let n = Int32Array::from(vec![1, 2, 3]);
        RecordBatch::try_new(schema, vec![Arc::new(ts), Arc::new(ltz), Arc::new(day), Arc::new(at), Arc::new(n)])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn json(style: TimestampStyle) -> Vec<String> {
        let b = style.apply(&batch(), &["ltz".to_string()]).unwrap_or_else(|e| panic!("{e}"));
        let rows = super::super::ValueEncoder::new(crate::options::Format::Json).encode(&b).unwrap_or_else(|e| panic!("{e}"));
        rows.into_iter().map(|r| String::from_utf8_lossy(&r).into_owned()).collect()
    }

    #[test]
    fn flink_sql_standard_drops_zero_fractions_and_marks_ltz() {
        assert_eq!(
            json(TimestampStyle::FlinkSql),
            [
                r#"{"ts":"2020-10-03 14:44:42","ltz":"2020-10-03 14:44:42.12Z","day":"2020-10-03","at":"14:44:42","n":1}"#,
                r#"{"ts":"2020-10-03 14:44:42.5","ltz":null,"day":null,"at":"14:44:42.01","n":2}"#,
                r#"{"ts":null,"ltz":"1970-01-01 00:00:00Z","day":"1970-01-01","at":null,"n":3}"#,
            ]
        );
    }

    #[test]
    fn flink_iso_standard_puts_a_t_between_date_and_time() {
        assert_eq!(json(TimestampStyle::FlinkIso)[1], r#"{"ts":"2020-10-03T14:44:42.5","ltz":null,"day":null,"at":"14:44:42.01","n":2}"#);
    }

    #[test]
    fn ksql_writes_numbers() {
        assert_eq!(
            json(TimestampStyle::EpochNumbers),
            [
                r#"{"ts":1601736282000,"ltz":1601736282120,"day":18538,"at":53082000,"n":1}"#,
                r#"{"ts":1601736282500,"ltz":null,"day":null,"at":53082010,"n":2}"#,
                r#"{"ts":null,"ltz":0,"day":0,"at":null,"n":3}"#,
            ]
        );
    }

    #[test]
    fn iso_is_left_alone() {
        assert_eq!(
            json(TimestampStyle::Iso)[0],
            r#"{"ts":"2020-10-03T14:44:42.000","ltz":"2020-10-03T14:44:42.120","day":"2020-10-03","at":"14:44:42","n":1}"#
        );
    }
}
