//! The table of a lookup join (Flink's JDBC lookup source): rows read by key, one query
//! per micro-batch for all the keys the join's cache lacks.
//!
//! One key column: `SELECT <columns> FROM t WHERE k = ANY($1::<type>[])`; several:
//! `WHERE (k1, k2) IN (SELECT * FROM unnest($1::<type>[], $2::<type>[]))`. Both use an
//! index on the key. Every column is cast in the SELECT to the PostgreSQL type of its
//! declared Eddy type (`::text`, `::int8`, `::float8`, ...), so a `numeric` column declared
//! `DOUBLE` reads as a double; types without a direct mapping are read as text and
//! converted by Arrow's cast (dates, timestamps, decimals).
//!
//! **Outages.** A query that fails for a reason a retry can fix (connection lost or
//! refused, server restarting; [`crate::error::postgres_transience`]) is retried on a new
//! connection with exponential backoff (100 ms up to 30 s) for as long as it takes, the
//! query showing `RETRYING` meanwhile; the join waits, so the source pauses and no row is
//! lost or joined without its table row. Other errors (table or column missing, a value
//! that does not convert, permission denied) fail the query with PostgreSQL's message.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, SchemaRef};
use async_trait::async_trait;
use eddy_engine::catalog::Relation;
use eddy_engine::connector::{LookupTable, QueryContext};
use eddy_engine::metrics::QueryMetrics;
use eddy_engine::options::PostgresOptions;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Row, Statement};

use super::quote_ident;
use crate::error::{ConnectorError, Result, Transience};
use crate::retry::Backoff;

/// Reads a PostgreSQL table by key for a lookup join.
pub struct PostgresLookup {
    config: Config,
    client: Option<Client>,
    statement: Option<Statement>,
    sql: String,
    table: String,
    schema: SchemaRef,
    /// The key columns' positions in `schema`.
    key_indices: Vec<usize>,
    metrics: Arc<QueryMetrics>,
    query_id: String,
}

impl PostgresLookup {
    /// A reader of `relation`'s table (`options`) at `url` by the `key` columns. Connects
    /// on the first lookup, so a query over a database that is down starts and shows
    /// RETRYING instead of failing to start.
    ///
    /// Errors: a bad URL, a key that is not a column, a key column of a type that has no
    /// PostgreSQL array to send the keys in.
    pub fn new(
        url: &str,
        options: &PostgresOptions,
        relation: &Relation,
        key: &[String],
        query: &QueryContext,
        connect_timeout: std::time::Duration,
    ) -> Result<Self> {
        let config = super::config(url, options, connect_timeout)?;
        let schema = relation.schema.clone();
        let key_indices = key.iter().map(|k| schema.index_of(k)).collect::<std::result::Result<Vec<_>, _>>()?;
        let columns: Vec<String> =
            schema.fields().iter().map(|f| format!("{}::{}", quote_ident(f.name()), read_type(f.data_type()).unwrap_or("text"))).collect();
        let mut params = Vec::with_capacity(key_indices.len());
        for (n, &i) in key_indices.iter().enumerate() {
            let field = schema.field(i);
            let ty = read_type(field.data_type()).ok_or_else(|| {
                ConnectorError::Config(format!(
                    "\"{}\".{} is {}: a lookup key is text, a whole number, a floating-point number or a boolean",
                    relation.name,
                    field.name(),
                    field.data_type()
                ))
            })?;
            params.push((quote_ident(field.name()), format!("${}::{ty}[]", n + 1)));
        }
        let table = quote_ident(&options.table);
        let sql = match params.as_slice() {
            [(column, param)] => format!("SELECT {} FROM {table} WHERE {column} = ANY({param})", columns.join(", ")),
            _ => {
                let names: Vec<&str> = params.iter().map(|(c, _)| c.as_str()).collect();
                let arrays: Vec<&str> = params.iter().map(|(_, p)| p.as_str()).collect();
                format!(
                    "SELECT {} FROM {table} WHERE ({}) IN (SELECT * FROM unnest({}))",
                    columns.join(", "),
                    names.join(", "),
                    arrays.join(", ")
                )
            }
        };
        Ok(PostgresLookup {
            config,
            client: None,
            statement: None,
            sql,
            table: options.table.clone(),
            schema,
            key_indices,
            metrics: query.metrics.clone(),
            query_id: query.query_id.clone(),
        })
    }

    /// The query sent per micro-batch (tests, EXPLAIN).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    async fn read(&mut self, params: &[Box<dyn ToSql + Sync + Send>]) -> Result<Vec<Row>> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statement = None;
            self.client = Some(super::connect(&self.config).await?);
        }
        let client = self.client.as_ref().ok_or_else(|| ConnectorError::Config("no PostgreSQL connection".into()))?;
        let statement = match &self.statement {
            Some(s) => s.clone(),
            None => {
                let s = client.prepare(&self.sql).await?;
                self.statement = Some(s.clone());
                s
            }
        };
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        Ok(client.query(&statement, &refs).await?)
    }

    fn to_batch(&self, rows: &[Row]) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (i, field) in self.schema.fields().iter().enumerate() {
            let column: ArrayRef = match field.data_type() {
                DataType::Utf8 => {
                    let mut b = StringBuilder::new();
                    for r in rows {
                        b.append_option(r.try_get::<_, Option<&str>>(i)?);
                    }
                    Arc::new(b.finish())
                }
                DataType::Int16 => column::<Int16Builder, i16>(rows, i)?,
                DataType::Int32 => column::<Int32Builder, i32>(rows, i)?,
                DataType::Int64 => column::<Int64Builder, i64>(rows, i)?,
                DataType::Float32 => column::<Float32Builder, f32>(rows, i)?,
                DataType::Float64 => column::<Float64Builder, f64>(rows, i)?,
                DataType::Boolean => {
                    let mut b = BooleanBuilder::new();
                    for r in rows {
                        b.append_option(r.try_get::<_, Option<bool>>(i)?);
                    }
                    Arc::new(b.finish())
                }
                other => {
                    // Read as text; Arrow's cast parses it (dates, timestamps, decimals).
                    let mut b = StringBuilder::new();
                    for r in rows {
                        b.append_option(r.try_get::<_, Option<&str>>(i)?);
                    }
                    let text: ArrayRef = Arc::new(b.finish());
                    let options = arrow::compute::CastOptions { safe: false, ..Default::default() };
                    arrow::compute::cast_with_options(&text, other, &options).map_err(|e| {
                        ConnectorError::Config(format!("column {} of \"{}\" does not read as {other}: {e}", field.name(), self.table))
                    })?
                }
            };
            columns.push(column);
        }
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)?)
    }
}

/// The PostgreSQL type a column of `data_type` is read as (`None`: as text, converted).
fn read_type(data_type: &DataType) -> Option<&'static str> {
    Some(match data_type {
        DataType::Utf8 => "text",
        DataType::Int16 => "int2",
        DataType::Int32 => "int4",
        DataType::Int64 => "int8",
        DataType::Float32 => "float4",
        DataType::Float64 => "float8",
        DataType::Boolean => "bool",
        _ => return None,
    })
}

/// A primitive column of `rows` at `i`.
fn column<B, T>(rows: &[Row], i: usize) -> Result<ArrayRef>
where
    B: arrow::array::ArrayBuilder + Default + Extend<Option<T>>,
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    let mut b = B::default();
    for r in rows {
        b.extend(std::iter::once(r.try_get::<_, Option<T>>(i)?));
    }
    Ok(b.finish())
}

/// The key values of column `array` as a PostgreSQL array parameter.
fn key_param(array: &ArrayRef) -> Result<Box<dyn ToSql + Sync + Send>> {
    Ok(match array.data_type() {
        DataType::Utf8 => Box::new(array.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>()),
        DataType::Int16 => Box::new(array.as_primitive::<Int16Type>().iter().collect::<Vec<_>>()),
        DataType::Int32 => Box::new(array.as_primitive::<Int32Type>().iter().collect::<Vec<_>>()),
        DataType::Int64 => Box::new(array.as_primitive::<Int64Type>().iter().collect::<Vec<_>>()),
        DataType::Float32 => Box::new(array.as_primitive::<Float32Type>().iter().collect::<Vec<_>>()),
        DataType::Float64 => Box::new(array.as_primitive::<Float64Type>().iter().collect::<Vec<_>>()),
        DataType::Boolean => Box::new(array.as_boolean().iter().collect::<Vec<_>>()),
        other => return Err(ConnectorError::Config(format!("a lookup key cannot be {other}"))),
    })
}

#[async_trait]
impl LookupTable for PostgresLookup {
    async fn lookup(&mut self, keys: &RecordBatch) -> eddy_engine::Result<RecordBatch> {
        if keys.num_rows() == 0 {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        debug_assert_eq!(keys.num_columns(), self.key_indices.len());
        let params = keys.columns().iter().map(key_param).collect::<Result<Vec<_>>>()?;
        let mut backoff = Backoff::default();
        let rows = loop {
            match self.read(&params).await {
                Ok(rows) => break rows,
                Err(e) if e.transience() == Transience::Transient => {
                    self.client = None;
                    let delay = backoff.next_delay();
                    let message = format!(
                        "lookup in PostgreSQL table {}: {e} (attempt {}, next in {} ms)",
                        self.table,
                        backoff.attempts(),
                        delay.as_millis()
                    );
                    tracing::warn!(query = %self.query_id, "{message}");
                    self.metrics.set_retrying(Some(message));
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if backoff.attempts() > 0 {
            tracing::info!(query = %self.query_id, attempts = backoff.attempts(), "lookups in {} resumed", self.table);
            self.metrics.set_retrying(None);
        }
        Ok(self.to_batch(&rows)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_read_as_themselves() {
        assert_eq!(read_type(&DataType::Utf8), Some("text"));
        assert_eq!(read_type(&DataType::Int64), Some("int8"));
        assert_eq!(read_type(&DataType::Date32), None);
    }
}
