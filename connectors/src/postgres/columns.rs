//! Arrow columns as typed vectors that tokio-postgres can bind, without a per-cell box.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType};
use tokio_postgres::types::{ToSql, Type};

use crate::error::{ConnectorError, Result};

/// One Arrow column, ready to bind row by row.
pub enum PgColumn<'a> {
    /// `integer`.
    Int(Vec<Option<i32>>),
    /// `bigint`.
    BigInt(Vec<Option<i64>>),
    /// `double precision`.
    Double(Vec<Option<f64>>),
    /// `boolean`.
    Bool(Vec<Option<bool>>),
    /// `text` (borrowed from the Arrow buffer).
    Text(Vec<Option<&'a str>>),
    /// `timestamp(3)`: milliseconds since the epoch, UTC.
    Timestamp(Vec<Option<SystemTime>>),
    /// `bytea` (borrowed from the Arrow buffer).
    Bytes(Vec<Option<&'a [u8]>>),
}

impl<'a> PgColumn<'a> {
    /// Converts a column with one of the types of `eddy_engine::sql::types`.
    pub fn from_array(array: &'a ArrayRef) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Int32 => PgColumn::Int(array.as_primitive::<Int32Type>().iter().collect()),
            DataType::Int64 => PgColumn::BigInt(array.as_primitive::<Int64Type>().iter().collect()),
            DataType::Float64 => PgColumn::Double(array.as_primitive::<Float64Type>().iter().collect()),
            DataType::Boolean => PgColumn::Bool(array.as_boolean().iter().collect()),
            DataType::Utf8 => PgColumn::Text(array.as_string::<i32>().iter().collect()),
            DataType::Binary => PgColumn::Bytes(array.as_binary::<i32>().iter().collect()),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                PgColumn::Timestamp(array.as_primitive::<TimestampMillisecondType>().iter().map(|v| v.map(millis_to_system_time)).collect())
            }
            other => return Err(ConnectorError::Config(format!("cannot write {other} to PostgreSQL"))),
        })
    }

    /// The value of row `i` as a bind parameter.
    pub fn param(&self, i: usize) -> &(dyn ToSql + Sync) {
        match self {
            PgColumn::Int(v) => &v[i],
            PgColumn::BigInt(v) => &v[i],
            PgColumn::Double(v) => &v[i],
            PgColumn::Bool(v) => &v[i],
            PgColumn::Text(v) => &v[i],
            PgColumn::Timestamp(v) => &v[i],
            PgColumn::Bytes(v) => &v[i],
        }
    }

    /// The PostgreSQL type (for binary COPY).
    pub fn pg_type(&self) -> Type {
        match self {
            PgColumn::Int(_) => Type::INT4,
            PgColumn::BigInt(_) => Type::INT8,
            PgColumn::Double(_) => Type::FLOAT8,
            PgColumn::Bool(_) => Type::BOOL,
            PgColumn::Text(_) => Type::TEXT,
            PgColumn::Timestamp(_) => Type::TIMESTAMP,
            PgColumn::Bytes(_) => Type::BYTEA,
        }
    }
}

fn millis_to_system_time(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}
