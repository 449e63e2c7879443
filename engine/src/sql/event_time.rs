//! Event-time declarations (docs/DESIGN.md, time) in both dialects, and SQL intervals.
//!
//! - Flink: `WATERMARK FOR ts AS ts - INTERVAL '5' SECOND` (ts must be TIMESTAMP(3),
//!   usually a computed column `ts AS TO_TIMESTAMP_LTZ(event_ts, 0)`).
//! - ksqlDB: `WITH (timestamp='col' [, timestamp_format='yyyy-MM-dd''T''HH:mm:ssX'])`,
//!   where `col` is TIMESTAMP, BIGINT epoch milliseconds, or VARCHAR (ISO-8601, or the
//!   given format). The watermark delay is 0: ksqlDB's grace period does the work.
//! - Neither: the Kafka record timestamp (ksqlDB's ROWTIME).

use arrow::datatypes::{DataType, Field};
use sqlparser::ast::{BinaryOperator, DateTimeField, Expr, Interval, Value};

use super::ast::{WatermarkSpec, WithOption};
use super::clauses::unit_ms;
use crate::catalog::EventTime;
use crate::error::{Position, SqlError};

/// Milliseconds of a SQL interval: `INTERVAL '5' SECOND`, `INTERVAL '3' SECONDS`,
/// `INTERVAL '1.5' SECOND`, `INTERVAL '10 minutes'`. `None` for anything else (months,
/// years, ranges): their length in ms is not fixed.
pub fn interval_ms(interval: &Interval) -> Option<i64> {
    let text = match interval.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::Number(s, _) => s.clone(),
            _ => return None,
        },
        _ => return None,
    };
    if interval.last_field.is_some() {
        return None;
    }
    let mut parts = text.split_whitespace();
    let number: f64 = parts.next()?.parse().ok()?;
    let unit_ms = match (&interval.leading_field, parts.next()) {
        (Some(field), None) => field_ms(field)?,
        (None, Some(unit)) => unit_ms(unit)?,
        _ => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let ms = number * unit_ms as f64;
    (ms.is_finite() && ms.fract() == 0.0 && ms.abs() < 9.0e15).then_some(ms as i64)
}

fn field_ms(field: &DateTimeField) -> Option<i64> {
    Some(match field {
        DateTimeField::Millisecond | DateTimeField::Milliseconds => 1,
        DateTimeField::Second | DateTimeField::Seconds => 1000,
        DateTimeField::Minute | DateTimeField::Minutes => 60_000,
        DateTimeField::Hour | DateTimeField::Hours => 3_600_000,
        DateTimeField::Day | DateTimeField::Days => 86_400_000,
        DateTimeField::Week(_) | DateTimeField::Weeks => 7 * 86_400_000,
        _ => return None,
    })
}

/// The interval of an expression that must be one (`INTERVAL '3' SECONDS`), in ms.
///
/// Errors: not an interval, or one without a fixed length, named at `position`.
pub fn expect_interval(expr: &Expr, what: &str) -> Result<i64, SqlError> {
    let position = expr_position(expr);
    match expr {
        Expr::Interval(i) => interval_ms(i).filter(|ms| *ms > 0).ok_or_else(|| {
            SqlError::new(format!("{what} must be a positive interval of fixed length, found {expr}"))
                .at(position)
                .hint("write INTERVAL '3' SECOND, INTERVAL '5' MINUTES or INTERVAL '1' HOUR")
        }),
        other => Err(SqlError::new(format!("{what} must be an interval, found {other}")).at(position).hint("write INTERVAL '3' SECOND")),
    }
}

/// Where an expression starts, if sqlparser kept it.
pub fn expr_position(expr: &Expr) -> Option<Position> {
    use sqlparser::ast::Spanned;
    Position::from_location(expr.span().start)
}

/// Builds a source's [`EventTime`] from its `WATERMARK FOR` clause and WITH options.
/// `fields` are all the relation's columns (computed ones included).
///
/// Errors: both dialects at once, an unknown column, a column of the wrong type, a
/// watermark expression that is not `col` or `col - INTERVAL ...`, a bad idle timeout.
pub fn plan_event_time(watermark: Option<&WatermarkSpec>, options: &[WithOption], fields: &[Field]) -> Result<EventTime, SqlError> {
    let find = |key: &str| options.iter().find(|o| o.key == key);
    let mut event_time = EventTime::default();
    if let Some(o) = find("scan.watermark.idle-timeout") {
        event_time.idle_timeout_ms = parse_duration_option(o)?;
    }
    event_time.late_rows_topic = find("late-rows.topic").map(|o| o.value.clone()).filter(|t| !t.is_empty());
    if let Some(o) = find("allowed-lateness") {
        event_time.allowed_lateness_ms = parse_duration_option(o)?;
    }
    let column_type = |name: &str, position: Option<Position>| -> Result<DataType, SqlError> {
        fields.iter().find(|f| f.name() == name).map(|f| f.data_type().clone()).ok_or_else(|| {
            let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
            let hint = crate::error::closest(name, names.iter().copied())
                .map(|c| format!("did you mean \"{c}\"?"))
                .unwrap_or_else(|| format!("declared columns: {}", names.join(", ")));
            SqlError::new(format!("unknown column \"{name}\"")).at(position).hint(hint)
        })
    };
    match (watermark, find("timestamp")) {
        (Some(w), Some(o)) => {
            return Err(SqlError::new("the event time is declared twice: WATERMARK FOR and timestamp=")
                .at(o.key_position)
                .hint(format!("keep WATERMARK FOR {} (Flink) or timestamp='...' (ksqlDB), not both", w.column)))
        }
        (Some(w), None) => {
            let data_type = column_type(&w.column.value, w.column.position)?;
            if !matches!(data_type, DataType::Timestamp(..)) {
                return Err(SqlError::new(format!(
                    "the watermark column \"{}\" must be TIMESTAMP(3), found {}",
                    w.column,
                    super::types::sql_name(&data_type)
                ))
                .at(w.column.position)
                .hint(format!("declare a computed column: ts AS TO_TIMESTAMP_LTZ({}, 0), and WATERMARK FOR ts", w.column)));
            }
            event_time.column = Some(w.column.value.clone());
            event_time.delay_ms = watermark_delay(w)?;
        }
        (None, Some(o)) => {
            let name = o.value.to_lowercase();
            let data_type = column_type(&name, o.value_position)?;
            if !matches!(data_type, DataType::Timestamp(..) | DataType::Int64 | DataType::Int32 | DataType::Utf8) {
                return Err(SqlError::new(format!(
                    "the timestamp column \"{name}\" must be TIMESTAMP, BIGINT (epoch milliseconds) or VARCHAR, found {}",
                    super::types::sql_name(&data_type)
                ))
                .at(o.value_position));
            }
            if let Some(f) = find("timestamp_format") {
                if data_type != DataType::Utf8 {
                    return Err(SqlError::new("timestamp_format applies to a VARCHAR timestamp column")
                        .at(f.key_position)
                        .hint("remove timestamp_format, or declare the column VARCHAR"));
                }
                crate::format::java_time::java_to_chrono(&f.value).map_err(|e| SqlError::new(e).at(f.value_position))?;
                event_time.format = Some(f.value.clone());
            }
            event_time.column = Some(name);
        }
        (None, None) => {
            if let Some(f) = find("timestamp_format") {
                return Err(SqlError::new("timestamp_format without timestamp").at(f.key_position).hint("add timestamp='column'"));
            }
        }
    }
    Ok(event_time)
}

/// `col` (no delay) or `col - INTERVAL 'n' UNIT`.
fn watermark_delay(w: &WatermarkSpec) -> Result<i64, SqlError> {
    let is_column = |e: &Expr| matches!(e, Expr::Identifier(i) if super::parser::normalize_ident(i) == w.column.value);
    let err = || {
        SqlError::new(format!("unsupported watermark expression: {}", w.expr))
            .at(expr_position(&w.expr))
            .hint(format!("write WATERMARK FOR {c} AS {c} - INTERVAL '5' SECOND", c = w.column))
    };
    match &w.expr {
        e if is_column(e) => Ok(0),
        Expr::BinaryOp { left, op: BinaryOperator::Minus, right } if is_column(left) => match right.as_ref() {
            Expr::Interval(i) => interval_ms(i).filter(|ms| *ms >= 0).ok_or_else(err),
            _ => Err(err()),
        },
        Expr::Nested(inner) => watermark_delay(&WatermarkSpec { column: w.column.clone(), expr: inner.as_ref().clone() }),
        _ => Err(err()),
    }
}

/// A duration option: `'10 s'`, `'10s'`, `'500 ms'`, `'1 min'`, or a number of ms.
pub(crate) fn parse_duration_option(o: &WithOption) -> Result<i64, SqlError> {
    let v = o.value.trim().to_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: i64 = number.parse().map_err(|_| {
        SqlError::new(format!("option '{}' must be a duration such as '10 s', found '{}'", o.key, o.value)).at(o.value_position)
    })?;
    let ms = match unit.trim() {
        "" | "ms" => 1,
        "s" | "sec" | "second" | "seconds" => 1000,
        "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        other => {
            return Err(SqlError::new(format!("unknown unit '{other}' in option '{}'", o.key))
                .at(o.value_position)
                .hint("write '500 ms', '10 s', '1 min' or '1 h'"))
        }
    };
    Ok(n * ms)
}

#[cfg(test)]
mod tests {
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;

    use super::*;

    fn ms(sql: &str) -> Option<i64> {
        let expr = Parser::new(&GenericDialect {}).try_with_sql(sql).ok()?.parse_expr().ok()?;
        match expr {
            Expr::Interval(i) => interval_ms(&i),
            _ => None,
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(ms("INTERVAL '5' SECOND"), Some(5000));
        assert_eq!(ms("INTERVAL '3' SECONDS"), Some(3000));
        assert_eq!(ms("INTERVAL '10' MINUTE"), Some(600_000));
        assert_eq!(ms("INTERVAL '10 minutes'"), Some(600_000));
        assert_eq!(ms("INTERVAL '1.5' SECOND"), Some(1500));
        assert_eq!(ms("INTERVAL '1' MONTH"), None);
    }
}
