//! SQL column types and their Arrow types.
//!
//! | SQL | Arrow |
//! |---|---|
//! | `INT`, `INTEGER` | `Int32` |
//! | `BIGINT` | `Int64` |
//! | `DOUBLE`, `DOUBLE PRECISION`, `FLOAT8` | `Float64` |
//! | `BOOLEAN`, `BOOL` | `Boolean` |
//! | `VARCHAR`, `STRING`, `TEXT` | `Utf8` |
//! | `TIMESTAMP`, `TIMESTAMP(3)` | `Timestamp(Millisecond, None)`: event time is milliseconds, UTC |

use arrow::datatypes::{DataType, TimeUnit};
use sqlparser::ast::DataType as SqlType;

use crate::error::{Position, SqlError};

/// The Arrow type of a declared SQL column type, or an error naming the type and the
/// supported ones.
pub fn arrow_type(sql: &SqlType, column: &str, position: Option<Position>) -> Result<DataType, SqlError> {
    Ok(match sql {
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int4(_) => DataType::Int32,
        SqlType::BigInt(_) | SqlType::Int8(_) | SqlType::Int64 => DataType::Int64,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float8 | SqlType::Float64 => DataType::Float64,
        SqlType::Boolean | SqlType::Bool => DataType::Boolean,
        SqlType::Varchar(_) | SqlType::String(_) | SqlType::Text | SqlType::CharacterVarying(_) | SqlType::CharVarying(_) => DataType::Utf8,
        SqlType::Timestamp(precision, _) => match precision {
            None | Some(3) => DataType::Timestamp(TimeUnit::Millisecond, None),
            Some(p) => {
                return Err(SqlError::new(format!("unsupported precision TIMESTAMP({p}) for column \"{column}\""))
                    .at(position)
                    .hint("event time is kept in milliseconds: use TIMESTAMP(3)"))
            }
        },
        other => {
            return Err(SqlError::new(format!("unsupported type {other} for column \"{column}\""))
                .at(position)
                .hint("use INT, BIGINT, DOUBLE, BOOLEAN, VARCHAR or TIMESTAMP(3)"))
        }
    })
}

/// The SQL name Eddy shows for an Arrow type (DESCRIBE, golden tests, Postgres DDL).
pub fn sql_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => "TIMESTAMP(3)".into(),
        other => other.to_string(),
    }
}

/// Whether a column of this Arrow type can be stored by sinks and decoded by formats.
pub fn is_supported(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int32
            | DataType::Int64
            | DataType::Float64
            | DataType::Boolean
            | DataType::Utf8
            | DataType::Timestamp(TimeUnit::Millisecond, None)
    )
}
