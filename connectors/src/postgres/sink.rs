//! Writes rows to a PostgreSQL table, one transaction per flush (one per micro-batch).
//!
//! With a primary key: multi-row `INSERT ... ON CONFLICT (pk) DO UPDATE SET <non-key
//! columns> = EXCLUDED.<column>`, up to 10,000 rows per statement and never more than
//! PostgreSQL's 65,535 bind parameters; rows of one flush with the same key are reduced
//! to the last one first (PostgreSQL refuses to update a row twice in one statement).
//! Without one: binary `COPY ... FROM STDIN`.

use std::collections::HashMap;

use arrow::array::Array;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use eddy_engine::catalog::Relation;
use eddy_engine::options::PostgresOptions;
use eddy_engine::runtime::Sink;
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::columns::PgColumn;
use super::{pg_type_name, quote_ident};
use crate::error::{ConnectorError, Result};

/// PostgreSQL's limit on bind parameters in one statement.
const MAX_PARAMS: usize = 65_535;
/// Most rows in one INSERT statement.
const MAX_ROWS_PER_STATEMENT: usize = 10_000;

/// A PostgreSQL table sink.
pub struct PostgresSink {
    config: Config,
    client: Option<Client>,
    table: String,
    schema: SchemaRef,
    key_indices: Vec<usize>,
    buffered: Vec<RecordBatch>,
    statements: HashMap<usize, Statement>,
}

impl PostgresSink {
    /// Connects and creates the table from `relation`'s schema if it is missing.
    ///
    /// Errors: bad URL, connection refused, authentication, DDL refused.
    pub async fn connect(url: &str, options: &PostgresOptions, relation: &Relation) -> Result<Self> {
        let mut config: Config = url.parse().map_err(|e| ConnectorError::Config(format!("bad PostgreSQL URL: {e}")))?;
        if let Some(u) = &options.username {
            config.user(u);
        }
        if let Some(p) = &options.password {
            config.password(p);
        }
        config.application_name("eddy");
        let key_indices = relation.primary_key.iter().map(|k| relation.schema.index_of(k)).collect::<Result<Vec<_>, _>>()?;
        let mut sink = PostgresSink {
            config,
            client: None,
            table: options.table.clone(),
            schema: relation.schema.clone(),
            key_indices,
            buffered: Vec::new(),
            statements: HashMap::new(),
        };
        let ddl = sink.create_table_sql()?;
        sink.client().await?.batch_execute(&ddl).await?;
        Ok(sink)
    }

    fn create_table_sql(&self) -> Result<String> {
        let mut cols = Vec::new();
        for f in self.schema.fields() {
            let ty = pg_type_name(f.data_type())
                .ok_or_else(|| ConnectorError::Config(format!("cannot store {} in PostgreSQL", f.data_type())))?;
            cols.push(format!("{} {ty}", quote_ident(f.name())));
        }
        if !self.key_indices.is_empty() {
            let keys: Vec<String> = self.key_indices.iter().map(|&i| quote_ident(self.schema.field(i).name())).collect();
            cols.push(format!("PRIMARY KEY ({})", keys.join(", ")));
        }
        Ok(format!("CREATE TABLE IF NOT EXISTS {} ({})", quote_ident(&self.table), cols.join(", ")))
    }

    /// The connected client, reconnecting if the connection was lost.
    async fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statements.clear();
            let (client, connection) = self.config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "postgres connection ended");
                }
            });
            self.client = Some(client);
        }
        self.client.as_mut().ok_or_else(|| ConnectorError::Config("no PostgreSQL connection".into()))
    }

    fn insert_sql(&self, rows: usize) -> String {
        let names: Vec<String> = self.schema.fields().iter().map(|f| quote_ident(f.name())).collect();
        let ncols = names.len();
        let mut sql = format!("INSERT INTO {} ({}) VALUES ", quote_ident(&self.table), names.join(", "));
        for r in 0..rows {
            if r > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..ncols {
                if c > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", r * ncols + c + 1));
            }
            sql.push(')');
        }
        let keys: Vec<String> = self.key_indices.iter().map(|&i| names[i].clone()).collect();
        let updates: Vec<String> = (0..ncols)
            .filter(|i| !self.key_indices.contains(i))
            .map(|i| format!("{0} = EXCLUDED.{0}", names[i]))
            .collect();
        if updates.is_empty() {
            sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", ")));
        } else {
            sql.push_str(&format!(" ON CONFLICT ({}) DO UPDATE SET {}", keys.join(", "), updates.join(", ")));
        }
        sql
    }

    /// Keeps, for each primary key, only its last row (input order otherwise kept).
    fn last_per_key(&self, batch: &RecordBatch) -> Result<Vec<usize>> {
        let fields: Vec<SortField> = self.key_indices.iter().map(|&i| SortField::new(self.schema.field(i).data_type().clone())).collect();
        let converter = RowConverter::new(fields)?;
        let keys: Vec<_> = self.key_indices.iter().map(|&i| batch.column(i).clone()).collect();
        let rows = converter.convert_columns(&keys)?;
        let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            last.insert(rows.row(i).data(), i);
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        Ok(keep)
    }

    async fn write_upserts(&mut self, batch: &RecordBatch) -> Result<()> {
        for &k in &self.key_indices {
            if batch.column(k).null_count() > 0 {
                return Err(ConnectorError::Config(format!(
                    "NULL in primary key column \"{}\" of table {}",
                    self.schema.field(k).name(),
                    self.table
                )));
            }
        }
        let keep = self.last_per_key(batch)?;
        let ncols = self.schema.fields().len();
        let per_statement = (MAX_PARAMS / ncols.max(1)).clamp(1, MAX_ROWS_PER_STATEMENT);
        let columns = batch.columns().iter().map(PgColumn::from_array).collect::<Result<Vec<_>>>()?;
        let chunks = statement_chunks(&keep, per_statement);
        let mut prepared = Vec::with_capacity(chunks.len());
        for chunk in &chunks {
            let n = chunk.len();
            if !self.statements.contains_key(&n) {
                let sql = self.insert_sql(n);
                let stmt = self.client().await?.prepare(&sql).await?;
                self.statements.insert(n, stmt);
            }
            if let Some(s) = self.statements.get(&n) {
                prepared.push(s.clone());
            }
        }
        let client = self.client().await?;
        let tx = client.transaction().await?;
        for (chunk, stmt) in chunks.iter().zip(&prepared) {
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::with_capacity(chunk.len() * ncols);
            for &row in *chunk {
                for col in &columns {
                    params.push(col.param(row));
                }
            }
            tx.execute(stmt, &params).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn write_copy(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns = batch.columns().iter().map(PgColumn::from_array).collect::<Result<Vec<_>>>()?;
        let types: Vec<_> = columns.iter().map(PgColumn::pg_type).collect();
        let names: Vec<String> = self.schema.fields().iter().map(|f| quote_ident(f.name())).collect();
        let sql = format!("COPY {} ({}) FROM STDIN BINARY", quote_ident(&self.table), names.join(", "));
        let client = self.client().await?;
        let tx = client.transaction().await?;
        {
            let sink = tx.copy_in(&sql).await?;
            let writer = BinaryCopyInWriter::new(sink, &types);
            pin_mut!(writer);
            let mut row: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::with_capacity(columns.len());
            for i in 0..batch.num_rows() {
                row.clear();
                row.extend(columns.iter().map(|c| c.param(i)));
                writer.as_mut().write(&row).await?;
            }
            writer.finish().await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Splits rows into statements of `full` rows, then the remainder into power-of-two
/// sizes, so at most about 15 distinct statement sizes are ever prepared and cached.
fn statement_chunks(rows: &[usize], full: usize) -> Vec<&[usize]> {
    let mut chunks = Vec::new();
    let mut rest = rows;
    while rest.len() >= full {
        let (head, tail) = rest.split_at(full);
        chunks.push(head);
        rest = tail;
    }
    while !rest.is_empty() {
        let size = 1usize << (usize::BITS - 1 - rest.len().leading_zeros());
        let (head, tail) = rest.split_at(size);
        chunks.push(head);
        rest = tail;
    }
    chunks
}

#[async_trait]
impl Sink for PostgresSink {
    async fn write(&mut self, batch: RecordBatch) -> eddy_engine::Result<()> {
        self.buffered.push(batch);
        Ok(())
    }

    async fn flush(&mut self) -> eddy_engine::Result<()> {
        if self.buffered.is_empty() {
            return Ok(());
        }
        let batch = concat_batches(&self.buffered[0].schema(), &self.buffered).map_err(ConnectorError::from)?;
        if batch.num_rows() > 0 {
            if self.key_indices.is_empty() {
                self.write_copy(&batch).await?;
            } else {
                self.write_upserts(&batch).await?;
            }
        }
        self.buffered.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::statement_chunks;

    #[test]
    fn chunk_sizes_are_full_or_powers_of_two() {
        let rows: Vec<usize> = (0..23_021).collect();
        let sizes: Vec<usize> = statement_chunks(&rows, 10_000).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![10_000, 10_000, 2048, 512, 256, 128, 64, 8, 4, 1]);
        assert_eq!(sizes.iter().sum::<usize>(), 23_021);
        assert!(statement_chunks(&[], 10).is_empty());
    }
}
