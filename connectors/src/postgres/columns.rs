//! Arrow columns as typed vectors that tokio-postgres can bind, without a per-cell box.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, Time32MillisecondType,
    TimeUnit, TimestampMillisecondType,
};
use tokio_postgres::types::{IsNull, ToSql, Type};

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
    /// `smallint` (TINYINT and SMALLINT).
    SmallInt(Vec<Option<i16>>),
    /// `real`.
    Real(Vec<Option<f32>>),
    /// `numeric(p, s)`.
    Numeric(Vec<Option<Numeric>>),
    /// `date`.
    Date(Vec<Option<chrono::NaiveDate>>),
    /// `time(3)`.
    Time(Vec<Option<chrono::NaiveTime>>),
    /// `jsonb` (ARRAY, MAP and ROW, as the JSON format writes them).
    Json(Vec<Option<serde_json::Value>>),
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
            DataType::Int8 => PgColumn::SmallInt(array.as_primitive::<Int8Type>().iter().map(|v| v.map(i16::from)).collect()),
            DataType::Int16 => PgColumn::SmallInt(array.as_primitive::<Int16Type>().iter().collect()),
            DataType::Float32 => PgColumn::Real(array.as_primitive::<Float32Type>().iter().collect()),
            DataType::Decimal128(_, scale) => PgColumn::Numeric(
                array.as_primitive::<Decimal128Type>().iter().map(|v| v.map(|value| Numeric { value, scale: *scale })).collect(),
            ),
            DataType::Date32 => {
                PgColumn::Date(array.as_primitive::<Date32Type>().iter().map(|v| v.and_then(Date32Type::to_naive_date_opt)).collect())
            }
            DataType::Time32(TimeUnit::Millisecond) => PgColumn::Time(
                array
                    .as_primitive::<Time32MillisecondType>()
                    .iter()
                    .map(|v| {
                        v.and_then(|ms| {
                            chrono::NaiveTime::from_num_seconds_from_midnight_opt((ms / 1000) as u32, (ms % 1000) as u32 * 1_000_000)
                        })
                    })
                    .collect(),
            ),
            DataType::List(_) | DataType::Map(..) | DataType::Struct(_) => PgColumn::Json(json_values(array)?),
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
            PgColumn::SmallInt(v) => &v[i],
            PgColumn::Real(v) => &v[i],
            PgColumn::Numeric(v) => &v[i],
            PgColumn::Date(v) => &v[i],
            PgColumn::Time(v) => &v[i],
            PgColumn::Json(v) => &v[i],
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
            PgColumn::SmallInt(_) => Type::INT2,
            PgColumn::Real(_) => Type::FLOAT4,
            PgColumn::Numeric(_) => Type::NUMERIC,
            PgColumn::Date(_) => Type::DATE,
            PgColumn::Time(_) => Type::TIME,
            PgColumn::Json(_) => Type::JSONB,
        }
    }
}

/// Each row of a nested column as a JSON value, as Eddy's JSON format writes it.
fn json_values(array: &ArrayRef) -> Result<Vec<Option<serde_json::Value>>> {
    let field = arrow::datatypes::Field::new("v", array.data_type().clone(), true);
    let batch =
        arrow::record_batch::RecordBatch::try_new(std::sync::Arc::new(arrow::datatypes::Schema::new(vec![field])), vec![array.clone()])
            .map_err(|e| ConnectorError::Config(e.to_string()))?;
    let mut buf = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new().with_explicit_nulls(true).build::<_, arrow::json::writer::JsonArray>(&mut buf);
        writer.write(&batch).map_err(|e| ConnectorError::Config(e.to_string()))?;
        writer.finish().map_err(|e| ConnectorError::Config(e.to_string()))?;
    }
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&buf).map_err(|e| ConnectorError::Config(e.to_string()))?;
    Ok(rows.into_iter().map(|mut row| row.get_mut("v").map(serde_json::Value::take).filter(|v| !v.is_null())).collect())
}

/// A DECIMAL value for PostgreSQL's `numeric`: `value` × 10^-`scale`, sent in
/// PostgreSQL's binary numeric form (base-10000 digits, weight, sign, display scale).
#[derive(Debug, Clone, Copy)]
pub struct Numeric {
    /// The unscaled value (Arrow's Decimal128).
    pub value: i128,
    /// Digits after the point (not negative for Flink and ksqlDB types).
    pub scale: i8,
}

impl Numeric {
    /// The base-10000 digits, the weight of the first one, and the display scale.
    fn digits(&self) -> (Vec<i16>, i16, u16) {
        let scale = self.scale.max(0) as usize;
        let text = self.value.unsigned_abs().to_string();
        let (int_part, frac_part) = if text.len() > scale {
            (text[..text.len() - scale].to_string(), text[text.len() - scale..].to_string())
        } else {
            (String::new(), format!("{text:0>scale$}"))
        };
        // Integer digits in groups of 4 from the right, fraction in groups of 4 from the left.
        let int_padded = format!("{}{int_part}", "0".repeat((4 - int_part.len() % 4) % 4));
        let frac_padded = format!("{frac_part}{}", "0".repeat((4 - frac_part.len() % 4) % 4));
        let group =
            |s: &str| -> Vec<i16> { s.as_bytes().chunks(4).map(|c| c.iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0'))).collect() };
        let int_groups = group(&int_padded);
        let mut digits = int_groups.clone();
        digits.extend(group(&frac_padded));
        let mut weight = int_groups.len() as i16 - 1;
        let leading = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..leading);
        weight -= leading as i16;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            weight = 0;
        }
        (digits, weight, scale as u16)
    }
}

impl ToSql for Numeric {
    fn to_sql(&self, _ty: &Type, out: &mut bytes::BytesMut) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use bytes::BufMut;
        let (digits, weight, dscale) = self.digits();
        out.put_i16(digits.len() as i16);
        out.put_i16(weight);
        out.put_u16(if self.value < 0 && !digits.is_empty() { 0x4000 } else { 0 });
        out.put_u16(dscale);
        for d in digits {
            out.put_i16(d);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    tokio_postgres::types::to_sql_checked!();
}

fn millis_to_system_time(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's binary numeric: base-10000 digits, the first one's weight, the scale.
    #[test]
    fn numeric_digits() {
        let digits = |value: i128, scale: i8| Numeric { value, scale }.digits();
        assert_eq!(digits(1234567890, 2), (vec![1234, 5678, 9000], 1, 2)); // 12345678.90
        assert_eq!(digits(-100, 2), (vec![1], 0, 2)); // -1.00
        assert_eq!(digits(1, 2), (vec![100], -1, 2)); // 0.01
        assert_eq!(digits(1, 4), (vec![1], -1, 4)); // 0.0001
        assert_eq!(digits(10000, 0), (vec![1], 1, 0)); // 10000
        assert_eq!(digits(0, 3), (vec![], 0, 3));
        assert_eq!(digits(123456789012345678901234567890123456, 0), (vec![1234, 5678, 9012, 3456, 7890, 1234, 5678, 9012, 3456], 8, 0));
    }
}
