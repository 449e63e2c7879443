//! PostgreSQL sink (`'connector'='postgres'`, or `'jdbc'` with a `jdbc:postgresql://` URL).

mod columns;
mod sink;

pub use sink::PostgresSink;

/// The PostgreSQL column type Eddy creates for an Arrow type.
pub fn pg_type_name(data_type: &arrow::datatypes::DataType) -> Option<&'static str> {
    use arrow::datatypes::{DataType, TimeUnit};
    Some(match data_type {
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        DataType::Float64 => "double precision",
        DataType::Boolean => "boolean",
        DataType::Utf8 => "text",
        DataType::Binary => "bytea",
        DataType::Timestamp(TimeUnit::Millisecond, None) => "timestamp(3)",
        _ => return None,
    })
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
