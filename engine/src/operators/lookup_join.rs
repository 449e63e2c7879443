//! The lookup join's work on one micro-batch, in two steps around the read of the table
//! (the runtime's lookup stage awaits the read between them; see
//! `crate::runtime::lookup`):
//!
//! 1. [`LookupJoin::keys_to_read`]: the batch's distinct lookup keys that the cache does
//!    not hold: one read per micro-batch, never one per row (Flink's JDBC lookup asks
//!    once per row unless a cache holds the key).
//! 2. [`LookupJoin::join`]: with the rows read, each stream row joined with every table
//!    row of its key that meets the rest of the ON clause; a LEFT join pads a row that has
//!    none with NULLs. Rows keep their order.
//!
//! A table held in this process's memory (a Kafka TABLE materialized from its topic,
//! [`ResidentTable`]) takes one step instead, [`LookupJoin::join_resident`]: its stored
//! row bytes are found per stream row and converted to columns once, with no read, no
//! cache and no copy of a row per stream row.
//!
//! Output rows: the stream's declared columns, the table's columns, then the stream's
//! meta columns (`__rowtime` and the like), so that the planner's expressions over
//! "stream columns, then table columns" read them by position.
//!
//! Keys are compared as Arrow's row format ([`RowConverter`]), after the planner cast the
//! stream's key values to the table columns' types. A NULL key matches nothing (SQL `=`).
//! The cache (`'lookup.cache'='PARTIAL'`) keeps each key's rows (none, for a key the table
//! lacks) until it expires or is the oldest written when the cache is full.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, filter_record_batch, take};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};
use datafusion::common::{HashMap, HashSet};
use datafusion::physical_expr::PhysicalExpr;

use crate::connector::ResidentTable;
use crate::error::{EngineError, Result};
use crate::options::{ConnectorOptions, LookupCache};
use crate::sql::lookup_join::{LookupJoinKind, LookupJoinPlan};

/// A stream batch waiting for its table rows: its key per row, and the keys to read.
#[derive(Debug)]
pub struct Pending {
    batch: RecordBatch,
    /// Each row's key in row format (meaningless where `null_key`).
    keys: Rows,
    null_key: Vec<bool>,
    /// The keys to read (columns named and typed as the table's key columns); `None`
    /// when every key is cached.
    pub to_read: Option<RecordBatch>,
}

/// One micro-batch's lookup join (see the module docs).
pub struct LookupJoin {
    kind: LookupJoinKind,
    stream_keys: Vec<Arc<dyn PhysicalExpr>>,
    condition: Option<Arc<dyn PhysicalExpr>>,
    key_schema: SchemaRef,
    key_converter: RowConverter,
    table_schema: SchemaRef,
    table_key_indices: Vec<usize>,
    row_converter: RowConverter,
    /// The stream's declared columns come first in its batches; meta columns follow.
    stream_columns: usize,
    output_schema: SchemaRef,
    cache: Cache,
}

impl LookupJoin {
    /// The join of `plan` over stream batches of `input`: the stream's declared
    /// columns (the first `stream_columns`), then meta columns.
    ///
    /// Errors: a table key column is not in the table's schema, or a type has no row
    /// format (nested types as keys).
    pub fn new(plan: &LookupJoinPlan, input: &SchemaRef, stream_columns: usize) -> Result<Self> {
        let table_schema = plan.table.schema.clone();
        let table_key_indices = plan.table_keys.iter().map(|k| table_schema.index_of(k)).collect::<std::result::Result<Vec<_>, _>>()?;
        let key_fields: Vec<Field> = table_key_indices.iter().map(|&i| table_schema.field(i).clone().with_nullable(true)).collect();
        let key_converter = RowConverter::new(key_fields.iter().map(|f| SortField::new(f.data_type().clone())).collect())?;
        let row_converter = RowConverter::new(table_schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect())?;
        let stream_columns = stream_columns.min(input.fields().len());
        let mut fields: Vec<Field> = input.fields()[..stream_columns].iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(table_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)));
        fields.extend(input.fields()[stream_columns..].iter().map(|f| f.as_ref().clone()));
        let cache = match &plan.table.connector {
            ConnectorOptions::Postgres(p) => &p.lookup_cache,
            _ => &LookupCache::None,
        };
        let cache = match cache {
            LookupCache::Partial { max_rows, expire_after_write_ms, expire_after_access_ms, cache_missing_key } => Cache {
                enabled: true,
                max_rows: *max_rows,
                expire_after_write: expire_after_write_ms.map(Duration::from_millis),
                expire_after_access: expire_after_access_ms.map(Duration::from_millis),
                cache_missing_key: *cache_missing_key,
                ..Cache::default()
            },
            _ => Cache::default(),
        };
        Ok(LookupJoin {
            kind: plan.kind,
            stream_keys: plan.stream_keys.iter().map(|k| k.expr.clone()).collect(),
            condition: plan.condition.as_ref().map(|c| c.expr.clone()),
            key_schema: Arc::new(Schema::new(key_fields)),
            key_converter,
            table_schema,
            table_key_indices,
            row_converter,
            stream_columns,
            output_schema: Arc::new(Schema::new(fields)),
            cache,
        })
    }

    /// The schema of the joined rows.
    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// Keys held in the cache.
    pub fn cached_keys(&self) -> usize {
        self.cache.entries.len()
    }

    /// The table's key columns, in the order this join encodes keys (the ON clause's).
    pub fn table_keys(&self) -> Vec<&str> {
        self.key_schema.fields().iter().map(|f| f.name().as_str()).collect()
    }

    /// Each row's key columns (cast to the table's key types), and whether it has a NULL.
    fn key_columns(&self, batch: &RecordBatch) -> Result<(Vec<ArrayRef>, Vec<bool>)> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.stream_keys.len());
        for (expr, field) in self.stream_keys.iter().zip(self.key_schema.fields()) {
            let array = expr.evaluate(batch)?.into_array(batch.num_rows())?;
            let array = if array.data_type() == field.data_type() { array } else { cast(&array, field.data_type())? };
            columns.push(array);
        }
        let null_key: Vec<bool> = match columns.iter().filter(|c| c.null_count() > 0).collect::<Vec<_>>() {
            with_nulls if with_nulls.is_empty() => vec![false; batch.num_rows()],
            with_nulls => (0..batch.num_rows()).map(|i| with_nulls.iter().any(|c| c.is_null(i))).collect(),
        };
        Ok((columns, null_key))
    }

    /// The join of `batch` with a table held in memory ([`ResidentTable`]): steps 1 and
    /// 2 at once, with no cache (the table is its own) and no copy of its rows but the
    /// one into the output's columns. `table` must encode keys in [`Self::table_keys`]'s
    /// order.
    ///
    /// Errors: a key expression or the ON condition fails on a row; the table cannot
    /// be read.
    pub fn join_resident(&mut self, batch: RecordBatch, table: &dyn ResidentTable) -> Result<RecordBatch> {
        let (columns, null_key) = self.key_columns(&batch)?;
        let keys = self.key_converter.convert_columns(&columns)?;
        let (stream_index, table_columns) = table.rows_of(&keys, &null_key)?;
        let table_index: Vec<Option<u32>> = (0..stream_index.len() as u32).map(Some).collect();
        self.finish(&batch, stream_index, &table_columns, table_index)
    }

    /// Step 1: the batch's keys, and those to read from the table (see [`Pending`]).
    ///
    /// Errors: a key expression fails on a row.
    pub fn keys_to_read(&mut self, batch: RecordBatch, now: Instant) -> Result<Pending> {
        let (columns, null_key) = self.key_columns(&batch)?;
        let keys = self.key_converter.convert_columns(&columns)?;
        let mut wanted: Vec<u32> = Vec::new();
        let mut seen = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            if null_key[i] || !seen.insert(key) {
                continue;
            }
            if !self.cache.holds(key.as_ref(), now) {
                wanted.push(i as u32);
            }
        }
        drop(seen);
        let to_read = if wanted.is_empty() {
            None
        } else {
            let indices = UInt32Array::from(wanted);
            let taken = columns.iter().map(|c| take(c.as_ref(), &indices, None)).collect::<std::result::Result<Vec<_>, _>>()?;
            Some(RecordBatch::try_new(self.key_schema.clone(), taken)?)
        };
        Ok(Pending { batch, keys, null_key, to_read })
    }

    /// Step 2: the joined rows of `pending`'s batch, with `read` the table's rows for
    /// its keys to read (the table's schema; any order; empty when none were read).
    ///
    /// Errors: `read` does not have the table's columns, or the ON condition fails.
    pub fn join(&mut self, pending: Pending, read: Option<RecordBatch>, now: Instant) -> Result<RecordBatch> {
        let Pending { batch, keys, null_key, to_read } = pending;
        // The rows read, by key; every key asked for gets an entry (none found: empty).
        let mut fresh: HashMap<Vec<u8>, Vec<OwnedRow>> = HashMap::new();
        // The keys in the order they were asked for: the order they enter the cache.
        let mut asked_order: Vec<Vec<u8>> = Vec::new();
        if let Some(asked) = &to_read {
            let asked_rows = self.key_converter.convert_columns(asked.columns())?;
            for key in asked_rows.iter() {
                fresh.insert(key.as_ref().to_vec(), Vec::new());
                asked_order.push(key.as_ref().to_vec());
            }
            if let Some(read) = read.filter(|r| r.num_rows() > 0) {
                if read.schema().fields().len() != self.table_schema.fields().len() {
                    return Err(EngineError::Internal(format!(
                        "the lookup read {} columns where the table has {}",
                        read.num_columns(),
                        self.table_schema.fields().len()
                    )));
                }
                let key_columns = self
                    .table_key_indices
                    .iter()
                    .zip(self.key_schema.fields())
                    .map(|(&i, f)| {
                        let c = read.column(i);
                        if c.data_type() == f.data_type() {
                            Ok(c.clone())
                        } else {
                            cast(c, f.data_type())
                        }
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let read_keys = self.key_converter.convert_columns(&key_columns)?;
                let read_rows = self.row_converter.convert_columns(read.columns())?;
                for (key, row) in read_keys.iter().zip(read_rows.iter()) {
                    // A row whose key has NULLs matches nothing; one for a key not
                    // asked for (a type that compares otherwise in the database) neither.
                    if let Some(rows) = fresh.get_mut(key.as_ref()) {
                        rows.push(row.owned());
                    }
                }
            }
        }
        // Candidates: (stream row, table row) for every match, in stream order.
        let mut stream_index: Vec<u32> = Vec::new();
        let mut table_rows: Vec<OwnedRow> = Vec::new();
        let mut table_index: Vec<Option<u32>> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if null_key[i] {
                continue;
            }
            let rows = match fresh.get(key.as_ref()) {
                Some(rows) => Some(rows.as_slice()),
                None => self.cache.get(key.as_ref(), now),
            };
            for row in rows.unwrap_or_default() {
                stream_index.push(i as u32);
                table_index.push(Some(table_rows.len() as u32));
                table_rows.push(row.clone());
            }
        }
        // Cached only now: a put may evict a key this batch found in the cache.
        for key in &asked_order {
            if let Some(rows) = fresh.get(key) {
                self.cache.put(key, rows, now);
            }
        }
        let table_columns = self.row_converter.convert_rows(table_rows.iter().map(|r| r.row()))?;
        self.finish(&batch, stream_index, &table_columns, table_index)
    }

    /// The joined rows from the candidates: `batch`'s row `stream_index[j]` (ascending)
    /// with the table's row `table_index[j]` of `table_columns`; the ON condition's
    /// rest keeps those that pass, and a LEFT join pads each stream row left without one.
    fn finish(
        &self,
        batch: &RecordBatch,
        stream_index: Vec<u32>,
        table_columns: &[ArrayRef],
        table_index: Vec<Option<u32>>,
    ) -> Result<RecordBatch> {
        let candidates = self.assemble(batch, &stream_index, table_columns, &table_index)?;
        let passed: Vec<bool> = match &self.condition {
            Some(condition) if candidates.num_rows() > 0 => {
                let mask = condition.evaluate(&candidates)?.into_array(candidates.num_rows())?;
                let mask = mask.as_boolean_opt().ok_or_else(|| EngineError::Internal("the join condition is not BOOLEAN".into()))?;
                (0..mask.len()).map(|j| mask.is_valid(j) && mask.value(j)).collect()
            }
            _ => vec![true; candidates.num_rows()],
        };
        if self.kind == LookupJoinKind::Inner {
            return match &self.condition {
                Some(_) => Ok(filter_record_batch(&candidates, &arrow::array::BooleanArray::from(passed))?),
                None => Ok(candidates),
            };
        }
        // LEFT: every stream row once at least; a row without a passing match padded.
        let mut out_stream: Vec<u32> = Vec::with_capacity(batch.num_rows());
        let mut out_table: Vec<Option<u32>> = Vec::with_capacity(batch.num_rows());
        let mut j = 0;
        for i in 0..batch.num_rows() as u32 {
            let mut matched = false;
            while j < stream_index.len() && stream_index[j] == i {
                if passed[j] {
                    out_stream.push(i);
                    out_table.push(table_index[j]);
                    matched = true;
                }
                j += 1;
            }
            if !matched {
                out_stream.push(i);
                out_table.push(None);
            }
        }
        self.assemble(batch, &out_stream, table_columns, &out_table)
    }

    /// The joined rows: `batch`'s rows at `stream_index` next to the table rows at
    /// `table_index` (NULLs where `None`).
    fn assemble(&self, batch: &RecordBatch, stream_index: &[u32], table: &[ArrayRef], table_index: &[Option<u32>]) -> Result<RecordBatch> {
        let rows = stream_index.len();
        // Every stream row once, in order (an INNER join where each row found its
        // key): the stream's columns as they are.
        let all_stream = rows == batch.num_rows() && stream_index.iter().enumerate().all(|(j, &i)| i as usize == j);
        let all_table = table.first().is_some_and(|c| c.len() == rows) && table_index.iter().enumerate().all(|(j, &t)| t == Some(j as u32));
        let stream_index = UInt32Array::from(stream_index.to_vec());
        let table_index = UInt32Array::from(table_index.to_vec());
        let stream_take = |c: &ArrayRef| if all_stream { Ok(c.clone()) } else { take(c.as_ref(), &stream_index, None) };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.output_schema.fields().len());
        for c in &batch.columns()[..self.stream_columns] {
            columns.push(stream_take(c)?);
        }
        for (c, f) in table.iter().zip(self.table_schema.fields()) {
            if c.is_empty() {
                columns.push(arrow::array::new_null_array(f.data_type(), rows));
            } else if all_table {
                columns.push(c.clone());
            } else {
                columns.push(take(c.as_ref(), &table_index, None)?);
            }
        }
        for c in &batch.columns()[self.stream_columns..] {
            columns.push(stream_take(c)?);
        }
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(self.output_schema.clone(), columns, &options)?)
    }
}

/// The partial cache: each key's rows, with when they were written and last used.
#[derive(Default)]
struct Cache {
    enabled: bool,
    max_rows: usize,
    expire_after_write: Option<Duration>,
    expire_after_access: Option<Duration>,
    cache_missing_key: bool,
    entries: HashMap<Vec<u8>, Entry>,
    /// Keys in the order written, with the write's number (a key written again has a
    /// newer number; the older one is skipped when evicting).
    order: VecDeque<(Vec<u8>, u64)>,
    writes: u64,
}

struct Entry {
    rows: Vec<OwnedRow>,
    written: Instant,
    accessed: Instant,
    write: u64,
}

impl Cache {
    fn fresh(&self, e: &Entry, now: Instant) -> bool {
        self.expire_after_write.is_none_or(|d| now.saturating_duration_since(e.written) < d)
            && self.expire_after_access.is_none_or(|d| now.saturating_duration_since(e.accessed) < d)
    }

    fn holds(&self, key: &[u8], now: Instant) -> bool {
        self.enabled && self.entries.get(key).is_some_and(|e| self.fresh(e, now))
    }

    fn get(&mut self, key: &[u8], now: Instant) -> Option<&[OwnedRow]> {
        let e = self.entries.get_mut(key)?;
        e.accessed = now;
        Some(e.rows.as_slice())
    }

    fn put(&mut self, key: &[u8], rows: &[OwnedRow], now: Instant) {
        if !self.enabled || (rows.is_empty() && !self.cache_missing_key) {
            self.entries.remove(key);
            return;
        }
        self.writes += 1;
        let write = self.writes;
        self.entries.insert(key.to_vec(), Entry { rows: rows.to_vec(), written: now, accessed: now, write });
        self.order.push_back((key.to_vec(), write));
        while self.entries.len() > self.max_rows {
            let Some((oldest, n)) = self.order.pop_front() else { break };
            if self.entries.get(&oldest).is_some_and(|e| e.write == n) {
                self.entries.remove(&oldest);
            }
        }
        // Superseded writes pile up in `order` when keys are rewritten often: drop them.
        if self.order.len() > 2 * self.max_rows.max(16) {
            let entries = &self.entries;
            self.order.retain(|(k, n)| entries.get(k).is_some_and(|e| e.write == *n));
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int32Array, StringArray};
    use arrow::util::pretty::pretty_format_batches;

    use super::*;
    use crate::sql::planner::{PlannedStatement, QueryPlan};
    use crate::{Engine, Script};

    const DDL: &str = "CREATE TABLE orders (order_id VARCHAR, customer_id VARCHAR, amount DOUBLE)
          WITH ('connector'='filesystem', 'path'='/dev/null', 'format'='json');
        CREATE TABLE customers (id VARCHAR, name VARCHAR, tier INT, PRIMARY KEY (id) NOT ENFORCED)
          WITH ('connector'='jdbc', 'url'='jdbc:postgresql://db:5432/shop', 'table-name'='customers' CACHE);
        CREATE TABLE out (order_id VARCHAR, name VARCHAR) WITH ('connector'='blackhole');";

    fn plan(join: &str, cache: &str) -> Arc<QueryPlan> {
        let sql = format!("{};\nINSERT INTO out SELECT o.order_id, c.name FROM orders o {join}", DDL.replace(" CACHE", cache));
        let plan = Engine::new(None, "test").plan(&[Script { name: "t".into(), sql }]).unwrap_or_else(|e| panic!("{}", e.error));
        plan.statements
            .into_iter()
            .find_map(|s| match s {
                PlannedStatement::StartQuery(q) => Some(q),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no query"))
    }

    fn join_of(plan: &QueryPlan) -> LookupJoin {
        let j = plan.lookup_join.as_ref().unwrap_or_else(|| panic!("no lookup join"));
        LookupJoin::new(j, &plan.source.schema, plan.source.schema.fields().len()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn orders(rows: &[(&str, Option<&str>)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("order_id", arrow::datatypes::DataType::Utf8, true),
            Field::new("customer_id", arrow::datatypes::DataType::Utf8, true),
            Field::new("amount", arrow::datatypes::DataType::Float64, true),
        ]));
        let ids = StringArray::from(rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>());
        let customers = StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
        let amounts = Float64Array::from(vec![1.0; rows.len()]);
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(customers), Arc::new(amounts)]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The table's rows for `keys`, from `all`.
    fn table(join: &LookupJoin, all: &[(&str, &str, i32)], keys: &RecordBatch) -> RecordBatch {
        let wanted: Vec<&str> = keys.column(0).as_string::<i32>().iter().flatten().collect();
        let rows: Vec<&(&str, &str, i32)> = all.iter().filter(|r| wanted.contains(&r.0)).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(Int32Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        ];
        RecordBatch::try_new(join.table_schema.clone(), columns).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Joins `batch` against `all`; returns the output and the keys read.
    fn run(join: &mut LookupJoin, batch: RecordBatch, all: &[(&str, &str, i32)]) -> (String, Vec<String>) {
        let now = Instant::now();
        let pending = join.keys_to_read(batch, now).unwrap_or_else(|e| panic!("{e}"));
        let asked: Vec<String> = match &pending.to_read {
            Some(k) => k.column(0).as_string::<i32>().iter().flatten().map(str::to_string).collect(),
            None => Vec::new(),
        };
        let read = pending.to_read.as_ref().map(|k| table(join, all, k));
        let out = join.join(pending, read, now).unwrap_or_else(|e| panic!("{e}"));
        (pretty_format_batches(&[out]).unwrap_or_else(|e| panic!("{e}")).to_string(), asked)
    }

    /// The data rows of a pretty-printed batch.
    fn data_lines(out: &str) -> Vec<&str> {
        out.lines().filter(|l| l.starts_with("| o") && !l.starts_with("| order_id")).collect()
    }

    const CUSTOMERS: &[(&str, &str, i32)] = &[("c1", "Ada", 1), ("c2", "Grace", 3), ("c2", "Grace II", 1)];

    #[test]
    fn left_join_pads_and_keeps_order_inner_drops() {
        let left = plan("LEFT JOIN customers c ON o.customer_id = c.id", "");
        let mut join = join_of(&left);
        let batch = orders(&[("o1", Some("c2")), ("o2", Some("c9")), ("o3", None), ("o4", Some("c1")), ("o5", Some("c2"))]);
        let (out, asked) = run(&mut join, batch.clone(), CUSTOMERS);
        // One read for the distinct keys; a NULL key is not asked for.
        assert_eq!(asked, ["c2", "c9", "c1"]);
        let lines = data_lines(&out);
        assert_eq!(
            lines,
            [
                "| o1       | c2          | 1.0    | c2 | Grace    | 3    |",
                "| o1       | c2          | 1.0    | c2 | Grace II | 1    |",
                "| o2       | c9          | 1.0    |    |          |      |",
                "| o3       |             | 1.0    |    |          |      |",
                "| o4       | c1          | 1.0    | c1 | Ada      | 1    |",
                "| o5       | c2          | 1.0    | c2 | Grace    | 3    |",
                "| o5       | c2          | 1.0    | c2 | Grace II | 1    |",
            ]
        );
        let inner = plan("JOIN customers c ON o.customer_id = c.id AND c.tier > 1", "");
        let mut join = join_of(&inner);
        let (out, _) = run(&mut join, batch.clone(), CUSTOMERS);
        let lines = data_lines(&out);
        assert_eq!(
            lines,
            ["| o1       | c2          | 1.0    | c2 | Grace | 3    |", "| o5       | c2          | 1.0    | c2 | Grace | 3    |"]
        );
        // LEFT with a condition: a row none of whose matches meet it is padded once.
        let left = plan("LEFT JOIN customers c ON o.customer_id = c.id AND c.tier > 1", "");
        let mut join = join_of(&left);
        let (out, _) = run(&mut join, batch, CUSTOMERS);
        let lines = data_lines(&out);
        assert_eq!(lines.len(), 5, "{out}");
        assert_eq!(lines[3], "| o4       | c1          | 1.0    |    |       |      |");
    }

    #[test]
    fn the_partial_cache_reads_each_key_once_until_it_is_evicted() {
        let cached =
            plan("LEFT JOIN customers c ON o.customer_id = c.id", ", 'lookup.cache'='PARTIAL', 'lookup.partial-cache.max-rows'='2'");
        let mut join = join_of(&cached);
        let (_, asked) = run(&mut join, orders(&[("o1", Some("c1")), ("o2", Some("c9"))]), CUSTOMERS);
        assert_eq!(asked, ["c1", "c9"]);
        // Both cached, the missing key too: nothing is read.
        let (out, asked) = run(&mut join, orders(&[("o3", Some("c9")), ("o4", Some("c1"))]), CUSTOMERS);
        assert!(asked.is_empty(), "{asked:?}");
        assert!(out.contains("| o4       | c1          | 1.0    | c1 | Ada  | 1    |"), "{out}");
        // A third key evicts the oldest written (c1); c9 stays.
        let (_, asked) = run(&mut join, orders(&[("o5", Some("c2")), ("o6", Some("c9"))]), CUSTOMERS);
        assert_eq!(asked, ["c2"]);
        assert_eq!(join.cached_keys(), 2);
        let (_, asked) = run(&mut join, orders(&[("o7", Some("c1")), ("o8", Some("c9"))]), CUSTOMERS);
        assert_eq!(asked, ["c1"]);
        // Without a cache every batch reads its keys.
        let uncached = plan("LEFT JOIN customers c ON o.customer_id = c.id", "");
        let mut join = join_of(&uncached);
        run(&mut join, orders(&[("o1", Some("c1"))]), CUSTOMERS);
        let (_, asked) = run(&mut join, orders(&[("o2", Some("c1"))]), CUSTOMERS);
        assert_eq!(asked, ["c1"]);
        assert_eq!(join.cached_keys(), 0);
    }

    /// A table in memory, row-encoded by its key, as a materialized Kafka TABLE holds it.
    struct Resident {
        key: Vec<String>,
        rows: RowConverter,
        current: HashMap<Vec<u8>, Vec<u8>>,
    }

    impl Resident {
        fn of(join: &LookupJoin, rows: &[(&str, &str, i32)]) -> Resident {
            let all = table(
                join,
                rows,
                &RecordBatch::try_new(
                    Arc::new(Schema::new(vec![Field::new("id", arrow::datatypes::DataType::Utf8, true)])),
                    vec![Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()))],
                )
                .unwrap_or_else(|e| panic!("{e}")),
            );
            let keys = RowConverter::new(vec![SortField::new(arrow::datatypes::DataType::Utf8)]).unwrap_or_else(|e| panic!("{e}"));
            let rows_converter =
                RowConverter::new(join.table_schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect())
                    .unwrap_or_else(|e| panic!("{e}"));
            let encoded_keys = keys.convert_columns(&[all.column(0).clone()]).unwrap_or_else(|e| panic!("{e}"));
            let encoded = rows_converter.convert_columns(all.columns()).unwrap_or_else(|e| panic!("{e}"));
            let current = (0..all.num_rows()).map(|i| (encoded_keys.row(i).as_ref().to_vec(), encoded.row(i).as_ref().to_vec())).collect();
            Resident { key: vec!["id".into()], rows: rows_converter, current }
        }
    }

    impl ResidentTable for Resident {
        fn key_columns(&self) -> &[String] {
            &self.key
        }

        fn rows_of(&self, keys: &Rows, skip: &[bool]) -> Result<(Vec<u32>, Vec<ArrayRef>)> {
            let mut found = Vec::new();
            let mut rows = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                if let Some(row) = self.current.get(key.as_ref()).filter(|_| !skip[i]) {
                    found.push(i as u32);
                    rows.push(row);
                }
            }
            let parser = self.rows.parser();
            Ok((found, self.rows.convert_rows(rows.iter().map(|r| parser.parse(r)))?))
        }
    }

    /// The rows of `batches`, one `|`-joined line each, sorted.
    fn sorted_lines(batches: &[RecordBatch]) -> Vec<String> {
        let mut lines: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows()).map(move |i| {
                    (0..6)
                        .map(|c| arrow::util::display::array_value_to_string(b.column(c), i).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("|")
                })
            })
            .collect();
        lines.sort();
        lines
    }

    /// Random orders against a random table with a primary key: the lookup join read by
    /// key, the same join against the table held in memory, and DataFusion's batch join
    /// give the same rows, for INNER and LEFT, with and without a condition beyond the key.
    #[tokio::test]
    async fn lookup_and_in_memory_joins_equal_the_batch_join() {
        use rand::{Rng, SeedableRng};
        for seed in 0..8u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let names = ["Ada", "Grace", "Edsger", "Barbara", "Alan", "Frances", "Tony", "Niklaus"];
            // Customers c0..c7 (c8 and c9 are missing), each once.
            let ids: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
            let customers: Vec<(&str, &str, i32)> = ids.iter().zip(names).map(|(id, n)| (id.as_str(), n, rng.random_range(0..4))).collect();
            let order_ids: Vec<String> = (0..200).map(|i| format!("o{i}")).collect();
            let keys: Vec<Option<String>> =
                (0..200).map(|_| (!rng.random_bool(0.1)).then(|| format!("c{}", rng.random_range(0..10)))).collect();
            let rows: Vec<(&str, Option<&str>)> = order_ids.iter().zip(&keys).map(|(o, k)| (o.as_str(), k.as_deref())).collect();
            let ctx = datafusion::prelude::SessionContext::new();
            ctx.register_batch("orders", orders(&rows)).unwrap_or_else(|e| panic!("{e}"));
            for (join_sql, batch_sql) in [
                ("JOIN customers c ON o.customer_id = c.id", "JOIN c ON o.customer_id = c.id"),
                ("LEFT JOIN customers c ON o.customer_id = c.id", "LEFT JOIN c ON o.customer_id = c.id"),
                ("JOIN customers c ON o.customer_id = c.id AND c.tier > 1", "JOIN c ON o.customer_id = c.id AND c.tier > 1"),
                ("LEFT JOIN customers c ON o.customer_id = c.id AND c.tier > 1", "LEFT JOIN c ON o.customer_id = c.id AND c.tier > 1"),
            ] {
                let planned = plan(join_sql, "");
                let mut read = join_of(&planned);
                let mut resident_join = join_of(&planned);
                let resident = Resident::of(&resident_join, &customers);
                if ctx.table_exist("c").unwrap_or(false) {
                    ctx.deregister_table("c").unwrap_or_else(|e| panic!("{e}"));
                }
                let all_ids = RecordBatch::try_new(
                    Arc::new(Schema::new(vec![Field::new("id", arrow::datatypes::DataType::Utf8, true)])),
                    vec![Arc::new(StringArray::from(customers.iter().map(|r| r.0).collect::<Vec<_>>()))],
                )
                .unwrap_or_else(|e| panic!("{e}"));
                ctx.register_batch("c", table(&read, &customers, &all_ids)).unwrap_or_else(|e| panic!("{e}"));
                // The stream in micro-batches of 1 to 40 rows.
                let (mut by_read, mut in_memory) = (Vec::new(), Vec::new());
                let mut at = 0;
                while at < rows.len() {
                    let n = rng.random_range(1..40).min(rows.len() - at);
                    let batch = orders(&rows[at..at + n]);
                    let now = Instant::now();
                    let pending = read.keys_to_read(batch.clone(), now).unwrap_or_else(|e| panic!("{e}"));
                    let got = pending.to_read.as_ref().map(|k| table(&read, &customers, k));
                    by_read.push(read.join(pending, got, now).unwrap_or_else(|e| panic!("{e}")));
                    in_memory.push(resident_join.join_resident(batch, &resident).unwrap_or_else(|e| panic!("{e}")));
                    at += n;
                }
                let batch = ctx
                    .sql(&format!("SELECT o.order_id, o.customer_id, o.amount, c.id, c.name, c.tier FROM orders o {batch_sql}"))
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .collect()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let expected = sorted_lines(&batch);
                assert!(!expected.is_empty(), "seed {seed} {join_sql}");
                assert_eq!(sorted_lines(&by_read), expected, "seed {seed} {join_sql}: read by key");
                assert_eq!(sorted_lines(&in_memory), expected, "seed {seed} {join_sql}: in memory");
            }
        }
    }
}
