//! Writes rows to a PostgreSQL table, one transaction per commit (one per checkpoint
//! barrier that has rows, and one when a watermark releases window results).
//!
//! **Exactly once.** Each transaction also upserts the query's row of `eddy_progress`
//! (the source positions its rows cover, the checkpoint id, the watermark), so rows and
//! progress commit or roll back together; a restarted query resumes from that progress
//! ([`Sink::restored_progress`]) and so neither repeats nor skips a row, with or without
//! a primary key.
//!
//! **Outages.** A transaction that fails for a reason a retry can fix (connection lost,
//! server restarting; see [`crate::error::postgres_transience`]) is retried on a new connection
//! with exponential backoff and jitter (100 ms up to 30 s) for as long as it takes; the
//! query shows `RETRYING` with the last error meanwhile, and since the sink task waits,
//! the bounded channels pause the source (backpressure). If the connection broke during
//! COMMIT, the progress row tells whether that transaction landed before it is sent
//! again. Other errors (table dropped, column type changed, permission denied) fail the
//! query with PostgreSQL's message.
//!
//! With a primary key: multi-row `INSERT ... ON CONFLICT (pk) DO UPDATE SET <non-key
//! columns> = EXCLUDED.<column>`, up to 10,000 rows per statement and never more than
//! PostgreSQL's 65,535 bind parameters; rows of one flush with the same key are reduced
//! to the last one first (PostgreSQL refuses to update a row twice in one statement).
//! Without one: binary `COPY ... FROM STDIN`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::Array;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use eddy_engine::catalog::Relation;
use eddy_engine::connector::{Progress, QueryContext, Sink};
use eddy_engine::metrics::QueryMetrics;
use eddy_engine::options::PostgresOptions;
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{Client, Config, Statement, Transaction};

use super::columns::PgColumn;
use super::{pg_type_name, quote_ident};
use crate::error::{postgres_transience, ConnectorError, Result, Transience};
use crate::retry::Backoff;

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
    /// The query's row in `eddy_progress`: its consumer group (`<application id>-<query id>`).
    progress_key: String,
    /// Makes every progress row this sink writes unique (`<random>-<n>`), so a commit
    /// whose answer was lost can be recognised after reconnecting.
    commit_nonce: u64,
    commits: u64,
    /// The checkpoint id committed last by this sink (to skip committing it again).
    committed_id: Option<u64>,
    metrics: Arc<QueryMetrics>,
}

const CREATE_PROGRESS_TABLE: &str = "CREATE TABLE IF NOT EXISTS eddy_progress (\
    query_id TEXT PRIMARY KEY, \
    checkpoint_id BIGINT NOT NULL, \
    positions JSONB NOT NULL, \
    watermark BIGINT, \
    commit_token TEXT NOT NULL, \
    committed_at TIMESTAMPTZ NOT NULL DEFAULT now())";

const UPSERT_PROGRESS: &str = "INSERT INTO eddy_progress (query_id, checkpoint_id, positions, watermark, commit_token) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (query_id) DO UPDATE SET checkpoint_id = EXCLUDED.checkpoint_id, \
    positions = EXCLUDED.positions, watermark = EXCLUDED.watermark, commit_token = EXCLUDED.commit_token, committed_at = now()";

impl PostgresSink {
    /// Connects and creates the table from `relation`'s schema if it is missing, and
    /// the `eddy_progress` table; the progress row is keyed by `query`'s consumer group.
    ///
    /// A connection attempt gives up after `connect_timeout` unless the URL sets its
    /// own `connect_timeout`.
    ///
    /// Errors: bad URL, connection refused or timed out, authentication, DDL refused.
    pub async fn connect(
        url: &str,
        options: &PostgresOptions,
        relation: &Relation,
        query: &QueryContext,
        connect_timeout: std::time::Duration,
    ) -> Result<Self> {
        let key_indices = relation.primary_key.iter().map(|k| relation.schema.index_of(k)).collect::<Result<Vec<_>, _>>()?;
        Self::open(url, options, relation.schema.clone(), key_indices, query, connect_timeout).await
    }

    /// A sink of dead letters (`eddy_engine::record::dead_letter_schema`, no key) to
    /// `table` at `url`: key and value as `bytea`, the rest as text, integer and
    /// timestamp columns. Flushed without a progress row (see the pipeline's side outputs).
    ///
    /// Errors: as [`PostgresSink::connect`].
    pub async fn dead_letters(url: &str, table: &str, query: &QueryContext, connect_timeout: std::time::Duration) -> Result<Self> {
        let options = PostgresOptions {
            url: Some(url.to_string()),
            table: table.to_string(),
            username: None,
            password: None,
            lookup_cache: Default::default(),
        };
        Self::open(url, &options, eddy_engine::record::dead_letter_schema(), Vec::new(), query, connect_timeout).await
    }

    async fn open(
        url: &str,
        options: &PostgresOptions,
        schema: SchemaRef,
        key_indices: Vec<usize>,
        query: &QueryContext,
        connect_timeout: std::time::Duration,
    ) -> Result<Self> {
        let config = super::config(url, options, connect_timeout)?;
        let mut sink = PostgresSink {
            config,
            client: None,
            table: options.table.clone(),
            schema,
            key_indices,
            buffered: Vec::new(),
            statements: HashMap::new(),
            progress_key: query.group_id.clone(),
            commit_nonce: rand::random(),
            commits: 0,
            committed_id: None,
            metrics: query.metrics.clone(),
        };
        let ddl = sink.create_table_sql()?;
        for statement in [ddl.as_str(), CREATE_PROGRESS_TABLE] {
            match sink.client().await?.batch_execute(statement).await {
                Ok(()) => {}
                // Two sinks creating the same table at once: the other one won.
                Err(e) if e.code().is_some_and(|c| c.code() == "23505" || c.code() == "42P07") => {}
                Err(e) => return Err(e.into()),
            }
        }
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
            let client = super::connect(&self.config).await?;
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
        let updates: Vec<String> =
            (0..ncols).filter(|i| !self.key_indices.contains(i)).map(|i| format!("{0} = EXCLUDED.{0}", names[i])).collect();
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

    /// Prepares (or takes from the cache) the upsert statements for `batch`: the rows
    /// to write (the last per key) in chunks, each with its statement.
    async fn prepare_upserts(&mut self, batch: &RecordBatch) -> Result<Vec<(Vec<usize>, Statement)>> {
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
        let mut prepared = Vec::new();
        for chunk in statement_chunks(&keep, per_statement) {
            let n = chunk.len();
            if !self.statements.contains_key(&n) {
                let sql = self.insert_sql(n);
                let stmt = self.client().await?.prepare(&sql).await?;
                self.statements.insert(n, stmt);
            }
            if let Some(stmt) = self.statements.get(&n) {
                prepared.push((chunk.to_vec(), stmt.clone()));
            }
        }
        Ok(prepared)
    }

    /// Writes `batch` (when it has rows) and `progress` (when given) in one transaction.
    async fn write_transaction(&mut self, batch: Option<&RecordBatch>, progress: Option<(&Progress, &str)>) -> Result<()> {
        let upserts = match batch {
            Some(b) if !self.key_indices.is_empty() => Some(self.prepare_upserts(b).await?),
            _ => None,
        };
        let copy_sql = self.copy_sql();
        let progress_key = self.progress_key.clone();
        let client = self.client().await?;
        let tx = client.transaction().await?;
        match (batch, upserts) {
            (Some(batch), Some(chunks)) => write_upserts(&tx, batch, &chunks).await?,
            (Some(batch), None) => write_copy(&tx, &copy_sql, batch).await?,
            (None, _) => {}
        }
        if let Some((p, token)) = progress {
            let checkpoint_id = i64::try_from(p.checkpoint_id).unwrap_or(i64::MAX);
            tx.execute(
                UPSERT_PROGRESS,
                &[&progress_key, &checkpoint_id, &serde_json::to_value(&p.positions).unwrap_or_default(), &p.watermark, &token],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    fn copy_sql(&self) -> String {
        let names: Vec<String> = self.schema.fields().iter().map(|f| quote_ident(f.name())).collect();
        format!("COPY {} ({}) FROM STDIN BINARY", quote_ident(&self.table), names.join(", "))
    }

    /// The commit token of the query's progress row now, if the row exists.
    async fn committed_token(&mut self) -> Result<Option<String>> {
        let key = self.progress_key.clone();
        let row = self.client().await?.query_opt("SELECT commit_token FROM eddy_progress WHERE query_id = $1", &[&key]).await?;
        row.map(|r| r.try_get(0)).transpose().map_err(ConnectorError::from)
    }

    /// Writes the buffered rows with `progress`, retrying transient failures (see the
    /// module docs); clears the buffer once they are committed.
    async fn commit_buffered(&mut self, progress: Option<&Progress>) -> eddy_engine::Result<()> {
        if self.buffered.is_empty() && progress.is_none_or(|p| self.committed_id == Some(p.checkpoint_id)) {
            return Ok(());
        }
        // Without rows, the progress alone is committed: a query that restores operator
        // state restores the checkpoint whose id this table holds, so every checkpoint
        // is recorded here, with rows or not.
        let batch = match self.buffered.first() {
            Some(first) => Some(concat_batches(&first.schema(), &self.buffered).map_err(ConnectorError::from)?),
            None => None,
        };
        let batch = batch.filter(|b| b.num_rows() > 0);
        self.commits += 1;
        let token = format!("{:016x}-{}", self.commit_nonce, self.commits);
        let mut backoff = Backoff::default();
        loop {
            let attempt = self.write_transaction(batch.as_ref(), progress.map(|p| (p, token.as_str()))).await;
            let error = match attempt {
                Ok(()) => break,
                Err(ConnectorError::Postgres(e)) if postgres_transience(&e) == Transience::Transient => e,
                Err(ConnectorError::Postgres(source)) => {
                    return Err(ConnectorError::Refused {
                        what: format!("PostgreSQL refused the rows for table {}", self.table),
                        consequence: "retrying cannot fix this, so the query stops (its offsets stay uncommitted: restarting it after the fix loses nothing)",
                        source: Box::new(ConnectorError::Postgres(source)),
                    }
                    .into())
                }
                Err(e) => return Err(e.into()),
            };
            self.client = None;
            // The connection may have broken after COMMIT reached the server: the
            // progress row says whether this transaction landed.
            if progress.is_some() {
                if let Ok(Some(committed)) = self.committed_token().await {
                    if committed == token {
                        tracing::info!(table = %self.table, "the interrupted commit had landed");
                        break;
                    }
                }
            }
            let delay = backoff.next_delay();
            let message = format!(
                "PostgreSQL table {}: {} (attempt {}, next in {} ms)",
                self.table,
                ConnectorError::Postgres(error),
                backoff.attempts(),
                delay.as_millis()
            );
            tracing::warn!(query = %self.progress_key, "{message}");
            self.metrics.set_retrying(Some(message));
            tokio::time::sleep(delay).await;
        }
        if backoff.attempts() > 0 {
            tracing::info!(table = %self.table, attempts = backoff.attempts(), "PostgreSQL writes resumed");
            self.metrics.set_retrying(None);
        }
        self.buffered.clear();
        if let Some(p) = progress {
            self.committed_id = Some(p.checkpoint_id);
        }
        Ok(())
    }
}

/// Runs the prepared upserts of `batch` in `tx`.
async fn write_upserts(tx: &Transaction<'_>, batch: &RecordBatch, chunks: &[(Vec<usize>, Statement)]) -> Result<()> {
    let columns = batch.columns().iter().map(PgColumn::from_array).collect::<Result<Vec<_>>>()?;
    for (rows, stmt) in chunks {
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::with_capacity(rows.len() * columns.len());
        for &row in rows {
            for col in &columns {
                params.push(col.param(row));
            }
        }
        tx.execute(stmt, &params).await?;
    }
    Ok(())
}

/// Copies every row of `batch` in `tx` (binary COPY).
async fn write_copy(tx: &Transaction<'_>, sql: &str, batch: &RecordBatch) -> Result<()> {
    let columns = batch.columns().iter().map(PgColumn::from_array).collect::<Result<Vec<_>>>()?;
    let types: Vec<_> = columns.iter().map(PgColumn::pg_type).collect();
    let sink = tx.copy_in(sql).await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    let mut row: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::with_capacity(columns.len());
    for i in 0..batch.num_rows() {
        row.clear();
        row.extend(columns.iter().map(|c| c.param(i)));
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    Ok(())
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
        self.commit_buffered(None).await
    }

    /// Nothing: the rows are committed with the checkpoint's progress in one
    /// transaction ([`Sink::commit`]), after the checkpoint is written.
    async fn pre_commit(&mut self) -> eddy_engine::Result<()> {
        Ok(())
    }

    async fn commit(&mut self, progress: &Progress) -> eddy_engine::Result<()> {
        self.commit_buffered(Some(progress)).await
    }

    async fn restored_progress(&mut self) -> eddy_engine::Result<Option<Progress>> {
        let key = self.progress_key.clone();
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT checkpoint_id, positions, watermark FROM eddy_progress WHERE query_id = $1", &[&key])
            .await
            .map_err(ConnectorError::from)?;
        let Some(r) = row else { return Ok(None) };
        let checkpoint_id: i64 = r.try_get(0).map_err(ConnectorError::from)?;
        let positions: serde_json::Value = r.try_get(1).map_err(ConnectorError::from)?;
        Ok(Some(Progress {
            checkpoint_id: u64::try_from(checkpoint_id).unwrap_or(0),
            positions: serde_json::from_value(positions).map_err(|e| {
                ConnectorError::Config(format!(
                    "eddy_progress.positions of {key} cannot be read ({e}); delete the row to start from the consumer group's offsets"
                ))
            })?,
            watermark: r.try_get(2).map_err(ConnectorError::from)?,
        }))
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
