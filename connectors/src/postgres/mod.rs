//! PostgreSQL sink (`'connector'='postgres'`, or `'jdbc'` with a `jdbc:postgresql://` URL).

mod columns;
mod sink;

pub use sink::PostgresSink;

/// The PostgreSQL column type Eddy creates for an Arrow type.
pub fn pg_type_name(data_type: &arrow::datatypes::DataType) -> Option<String> {
    use arrow::datatypes::{DataType, TimeUnit};
    Some(
        match data_type {
            DataType::Int8 | DataType::Int16 => "smallint",
            DataType::Float32 => "real",
            DataType::Decimal128(p, s) => return Some(format!("numeric({p}, {s})")),
            DataType::Date32 => "date",
            DataType::Time32(TimeUnit::Millisecond) => "time(3)",
            DataType::List(_) | DataType::Map(..) | DataType::Struct(_) => "jsonb",
            DataType::Int32 => "integer",
            DataType::Int64 => "bigint",
            DataType::Float64 => "double precision",
            DataType::Boolean => "boolean",
            DataType::Utf8 => "text",
            DataType::Binary => "bytea",
            DataType::Timestamp(TimeUnit::Millisecond, None) => "timestamp(3)",
            _ => return None,
        }
        .to_string(),
    )
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
