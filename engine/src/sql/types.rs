//! Declared column types ([`ColumnType`], Flink's and ksqlDB's names) and their Arrow types.
//!
//! | SQL | Arrow |
//! |---|---|
//! | `TINYINT`, `SMALLINT`, `INT`, `BIGINT` | `Int8`, `Int16`, `Int32`, `Int64` |
//! | `FLOAT`, `DOUBLE` | `Float32`, `Float64` |
//! | `DECIMAL(p, s)` | `Decimal128(p, s)` |
//! | `BOOLEAN` | `Boolean` |
//! | `VARCHAR`, `STRING` | `Utf8` |
//! | `BYTES` | `Binary` |
//! | `DATE` | `Date32` (days since 1970-01-01) |
//! | `TIME(p)`, p ≤ 3 | `Time32(Millisecond)` |
//! | `TIMESTAMP(p)`, `TIMESTAMP_LTZ(p)`, p ≤ 3 | `Timestamp(Millisecond, None)`: event time is milliseconds, UTC |
//! | `ARRAY<T>` | `List(item: T)` |
//! | `MAP<K, V>` | `Map(entries: Struct(key: K not null, value: V))` |
//! | `ROW<a T, ...>` / ksqlDB `STRUCT` | `Struct(a: T, ...)` |
//!
//! `TIMESTAMP_LTZ` is an instant; Eddy keeps every timestamp as UTC milliseconds, so it is
//! the same Arrow type as `TIMESTAMP` (Flink shows it in the session time zone; Eddy's is UTC).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use super::column_type::ColumnType;
use crate::error::{Position, SqlError};

/// The Arrow type of a declared column type, or an error naming the column.
pub fn arrow_type(t: &ColumnType, column: &str, position: Option<Position>) -> Result<DataType, SqlError> {
    let millis = |name: &str, p: &Option<u64>| match p {
        None | Some(0..=3) => Ok(()),
        Some(p) => Err(SqlError::new(format!("unsupported precision {name}({p}) for column \"{column}\""))
            .at(position)
            .hint(format!("Eddy keeps times in milliseconds: use {name}(3)"))),
    };
    Ok(match t {
        ColumnType::TinyInt => DataType::Int8,
        ColumnType::SmallInt => DataType::Int16,
        ColumnType::Int => DataType::Int32,
        ColumnType::BigInt => DataType::Int64,
        ColumnType::Float => DataType::Float32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Decimal(p, s) => DataType::Decimal128(*p, *s),
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::String => DataType::Utf8,
        ColumnType::Bytes => DataType::Binary,
        ColumnType::Date => DataType::Date32,
        ColumnType::Time(p) => {
            millis("TIME", p)?;
            DataType::Time32(TimeUnit::Millisecond)
        }
        ColumnType::Timestamp(p) => {
            millis("TIMESTAMP", p)?;
            DataType::Timestamp(TimeUnit::Millisecond, None)
        }
        ColumnType::TimestampLtz(p) => {
            millis("TIMESTAMP_LTZ", p)?;
            DataType::Timestamp(TimeUnit::Millisecond, None)
        }
        ColumnType::Array(element) => DataType::List(Arc::new(Field::new("item", arrow_type(element, column, position)?, true))),
        ColumnType::Map(key, value) => {
            let entries = Fields::from(vec![
                Field::new("key", arrow_type(key, column, position)?, false),
                Field::new("value", arrow_type(value, column, position)?, true),
            ]);
            DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
        }
        ColumnType::Row(fields) => DataType::Struct(
            fields
                .iter()
                .map(|(name, t)| Ok(Field::new(name, arrow_type(t, column, position)?, true)))
                .collect::<Result<Vec<_>, SqlError>>()?
                .into(),
        ),
    })
}

/// The SQL name Eddy shows for an Arrow type (DESCRIBE, golden tests, errors).
pub fn sql_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary => "BYTES".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time32(TimeUnit::Millisecond) => "TIME(3)".into(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => "TIMESTAMP(3)".into(),
        DataType::List(item) => format!("ARRAY<{}>", sql_name(item.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(f) if f.len() == 2 => format!("MAP<{}, {}>", sql_name(f[0].data_type()), sql_name(f[1].data_type())),
            other => other.to_string(),
        },
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields.iter().map(|f| format!("{} {}", f.name(), sql_name(f.data_type()))).collect();
            format!("ROW<{}>", inner.join(", "))
        }
        other => other.to_string(),
    }
}

/// Whether a column of this Arrow type can be stored by sinks and decoded by formats
/// (nested types only by JSON: [`nested`]).
pub fn is_supported(data_type: &DataType) -> bool {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Boolean
        | DataType::Utf8
        | DataType::Binary
        | DataType::Date32
        | DataType::Time32(TimeUnit::Millisecond)
        | DataType::Timestamp(TimeUnit::Millisecond, None) => true,
        DataType::List(item) => is_supported(item.data_type()),
        DataType::Map(entries, _) => is_supported(entries.data_type()),
        DataType::Struct(fields) => fields.iter().all(|f| is_supported(f.data_type())),
        _ => false,
    }
}

/// Whether the type is ARRAY, MAP or ROW (which DELIMITED cannot hold).
pub fn nested(data_type: &DataType) -> bool {
    matches!(data_type, DataType::List(_) | DataType::Map(..) | DataType::Struct(_))
}

/// ksqlDB's name of a column type, as its schema strings write it: `STRING` for VARCHAR,
/// `INTEGER` for INT (and TINYINT, SMALLINT, which ksqlDB lacks), `TIMESTAMP` for
/// TIMESTAMP(3) (ksqlDB's timestamps are milliseconds and carry no precision),
/// `DECIMAL(10, 2)`, `ARRAY<STRING>`, ``STRUCT<`A` INTEGER>``.
pub fn ksql_type_name(data_type: &arrow::datatypes::DataType) -> String {
    use arrow::datatypes::DataType;
    match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "INTEGER".to_string(),
        DataType::Int64 => "BIGINT".to_string(),
        DataType::Float32 | DataType::Float64 => "DOUBLE".to_string(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Boolean => "BOOLEAN".to_string(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".to_string(),
        DataType::Binary => "BYTES".to_string(),
        DataType::Date32 => "DATE".to_string(),
        DataType::Time32(_) => "TIME".to_string(),
        DataType::Timestamp(..) => "TIMESTAMP".to_string(),
        DataType::List(item) => format!("ARRAY<{}>", ksql_type_name(item.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(f) if f.len() == 2 => {
                format!("MAP<{}, {}>", ksql_type_name(f[0].data_type()), ksql_type_name(f[1].data_type()))
            }
            other => other.to_string(),
        },
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields.iter().map(|f| format!("`{}` {}", f.name(), ksql_type_name(f.data_type()))).collect();
            format!("STRUCT<{}>", inner.join(", "))
        }
        other => sql_name(other),
    }
}
