//! Planning a pull query (ksqlDB): `SELECT ... FROM table [WHERE ...] [LIMIT n]` without
//! `EMIT CHANGES` reads a Kafka TABLE's current rows once and ends.
//!
//! The table is read from its materialized state ([`crate::runtime::MaterializedTable`]):
//! by key when the WHERE clause pins every primary-key column to constants (`id = 'x'`,
//! `id IN ('x', 'y')`, ANDed with anything), by a scan in key order otherwise (ksqlDB's
//! table scans). A windowed table's key includes its window start, so a query by key
//! and window start range scans the table and filters.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, InListExpr, Literal, TryCastExpr};
use datafusion::physical_expr::PhysicalExpr;
use sqlparser::ast::Query;

use super::ast::{ObjectKind, ParsedStatement, StreamClauses};
use super::planner::{check_query_source, take_limit, PlannedExpr, Planner};
use crate::catalog::Relation;
use crate::error::SqlError;
use crate::options::ConnectorOptions;

/// A planned pull query.
#[derive(Debug, Clone)]
pub struct PullPlan {
    /// The table read.
    pub table: Arc<Relation>,
    /// WHERE, over the table's schema.
    pub filter: Option<PlannedExpr>,
    /// One expression per output column, over the table's schema.
    pub projection: Vec<PlannedExpr>,
    /// The schema of the rows returned.
    pub output_schema: SchemaRef,
    /// `LIMIT n` (rows).
    pub limit: Option<usize>,
    /// The keys WHERE pins (one column per primary-key column, one row per key), read
    /// by key; `None`: the table is scanned.
    pub keys: Option<RecordBatch>,
}

impl std::fmt::Display for PullPlan {
    /// What EXPLAIN shows: the table, how it is read, the filter, the projection.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pull query")?;
        writeln!(f, "  table: {} ({}), key [{}]", self.table.name, self.table.connector, self.table.key.join(", "))?;
        match &self.keys {
            Some(keys) => writeln!(f, "  read: {} key(s) pinned by WHERE", keys.num_rows())?,
            None => writeln!(f, "  read: scan in key order")?,
        }
        if let Some(filter) = &self.filter {
            writeln!(f, "  filter: {}", filter.display)?;
        }
        let exprs: Vec<String> = self.projection.iter().map(|p| format!("{} := {}", p.name, p.display)).collect();
        write!(f, "  project: {}", exprs.join(", "))?;
        if let Some(limit) = self.limit {
            write!(f, "\n  limit: {limit}")?;
        }
        Ok(())
    }
}

impl Planner<'_> {
    /// Plans a pull query.
    ///
    /// Errors: the relation is a stream (which needs EMIT CHANGES) or a table that is not
    /// a Kafka table with a primary key; the query aggregates, joins or uses
    /// MATCH_RECOGNIZE; and every error of a SELECT.
    pub fn plan_pull(&mut self, query: &Query, parsed: &ParsedStatement) -> Result<PullPlan, SqlError> {
        let mut query = super::views::expand(query, self.catalog)?;
        let limit = take_limit(&mut query, parsed)?;
        super::names::ksql_column_aliases(&mut query);
        super::functions::use_ksql_functions(&mut query);
        let table = check_query_source(&query, self.catalog)?;
        if table.kind != ObjectKind::Table {
            return Err(SqlError::new("a SELECT on a stream must end with EMIT CHANGES")
                .at(Some(parsed.position))
                .hint("add EMIT CHANGES to stream its results as they arrive (a push query); a pull query reads a TABLE"));
        }
        if !table.is_changelog() || !table.computed.is_empty() {
            let name = table.display_name(&table.name);
            return Err(SqlError::new(format!("the table \"{name}\" cannot be queried: only a Kafka table with a PRIMARY KEY is"))
                .at(Some(parsed.position))
                .hint(format!("derive a queryable table: CREATE TABLE QUERYABLE_{name} AS SELECT * FROM {name} EMIT CHANGES;")));
        }
        super::comparisons::check_comparisons(&query, &table.schema)?;
        // The planner refuses to read a windowed table as a stream's source; its state
        // is read with its window bounds, so plan over the table as its rows are.
        let mut relation = table.as_ref().clone();
        if let ConnectorOptions::Kafka(k) = &mut relation.connector {
            k.windowed_key = None;
        }
        let mut catalog = self.catalog.clone();
        catalog.insert(Arc::new(relation));
        let planner = Planner { catalog: &mut catalog, state: self.state, query_ids: &mut *self.query_ids, state_ttl_ms: None };
        let select = planner.plan_select(&query, &StreamClauses::default(), None)?;
        if select.aggregate.is_some() {
            return Err(SqlError::new("a pull query cannot aggregate")
                .at(Some(parsed.position))
                .hint("aggregate in a CREATE TABLE ... AS SELECT ... GROUP BY, then query that table"));
        }
        if select.match_recognize.is_some() || select.lookup_join.is_some() {
            return Err(SqlError::new("a pull query reads one table: no join or MATCH_RECOGNIZE")
                .at(Some(parsed.position))
                .hint("write the query's result to a table with CREATE TABLE ... AS SELECT, then query that table"));
        }
        let output_schema = select.output_schema()?;
        let keys = match &select.filter {
            Some(f) => pinned_keys(&f.expr, &table).map_err(|e| SqlError::new(e.to_string()).at(Some(parsed.position)))?,
            None => None,
        };
        Ok(PullPlan { table, filter: select.filter, projection: select.projection, output_schema, limit, keys })
    }
}

/// The keys `filter` pins: every primary-key column compared with `=` or `IN` to
/// constants in a conjunct. `None` when some key column is not pinned.
fn pinned_keys(filter: &Arc<dyn PhysicalExpr>, table: &Relation) -> datafusion::error::Result<Option<RecordBatch>> {
    let mut pins: Vec<(usize, Vec<ScalarValue>)> = Vec::new();
    collect_pins(filter, &table.schema, &mut pins);
    let mut columns: Vec<Vec<ScalarValue>> = Vec::new();
    let mut fields = Vec::new();
    for name in &table.key {
        let index = table.schema.index_of(name)?;
        // Two pins of one column (`id = 'a' AND id = 'b'`) intersect.
        let mut values: Option<Vec<ScalarValue>> = None;
        for (_, v) in pins.iter().filter(|(i, _)| *i == index) {
            values = Some(match values {
                None => v.clone(),
                Some(have) => have.into_iter().filter(|x| v.contains(x)).collect(),
            });
        }
        let Some(values) = values else { return Ok(None) };
        let field = table.schema.field(index);
        // A constant that is not a value of the key's type pins nothing (the filter,
        // applied to every row read, still decides).
        let Ok(cast) = values.iter().map(|v| v.cast_to(field.data_type())).collect::<datafusion::error::Result<Vec<_>>>() else {
            return Ok(None);
        };
        columns.push(cast);
        fields.push(field.clone().with_nullable(true));
    }
    // Every combination of the pinned values (a key of two columns pinned by IN lists).
    let mut rows: Vec<Vec<ScalarValue>> = vec![Vec::new()];
    for values in &columns {
        rows = rows.iter().flat_map(|r| values.iter().map(move |v| r.iter().cloned().chain([v.clone()]).collect())).collect();
        if rows.len() > 10_000 {
            return Ok(None);
        }
    }
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|c| {
            let values: Vec<ScalarValue> = rows.iter().map(|r| r[c].clone()).collect();
            if values.is_empty() {
                Ok(arrow::array::new_empty_array(fields[c].data_type()))
            } else {
                ScalarValue::iter_to_array(values)
            }
        })
        .collect::<datafusion::error::Result<_>>()?;
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Ok(Some(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)?))
}

/// Pins (column index, the constants it equals) from the conjuncts of `expr`.
fn collect_pins(expr: &Arc<dyn PhysicalExpr>, schema: &Schema, pins: &mut Vec<(usize, Vec<ScalarValue>)>) {
    if let Some(b) = expr.downcast_ref::<BinaryExpr>() {
        match b.op() {
            Operator::And => {
                collect_pins(b.left(), schema, pins);
                collect_pins(b.right(), schema, pins);
            }
            Operator::Eq => {
                let pair = match (column_of(b.left(), schema), constant(b.right())) {
                    (Some(c), Some(v)) => Some((c, v)),
                    _ => column_of(b.right(), schema).zip(constant(b.left())),
                };
                if let Some((c, v)) = pair.filter(|(_, v)| !v.is_null()) {
                    pins.push((c, vec![v]));
                }
            }
            _ => {}
        }
    } else if let Some(list) = expr.downcast_ref::<InListExpr>() {
        if list.negated() {
            return;
        }
        if let Some(c) = column_of(list.expr(), schema) {
            let values: Option<Vec<ScalarValue>> = list.list().iter().map(constant).collect();
            if let Some(values) = values {
                pins.push((c, values.into_iter().filter(|v| !v.is_null()).collect()));
            }
        }
    }
}

/// The column `expr` reads, under the widening casts type coercion adds (an INT key
/// compared with a BIGINT constant): casts that keep distinct values distinct.
fn column_of(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<usize> {
    if let Some(c) = expr.downcast_ref::<Column>() {
        Some(c.index())
    } else if let Some(c) = expr.downcast_ref::<CastExpr>() {
        use arrow::datatypes::DataType::*;
        let inner = column_of(c.expr(), schema)?;
        let widening = matches!(
            (schema.field(inner).data_type(), c.cast_type()),
            (Int8 | Int16 | Int32 | Int64, Int64) | (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View)
        );
        widening.then_some(inner)
    } else {
        None
    }
}

/// The constant `expr` is, under casts.
fn constant(expr: &Arc<dyn PhysicalExpr>) -> Option<ScalarValue> {
    if let Some(l) = expr.downcast_ref::<Literal>() {
        Some(l.value().clone())
    } else if let Some(c) = expr.downcast_ref::<CastExpr>() {
        constant(c.expr()).and_then(|v| v.cast_to(c.cast_type()).ok())
    } else if let Some(c) = expr.downcast_ref::<TryCastExpr>() {
        constant(c.expr()).and_then(|v| v.cast_to(c.cast_type()).ok())
    } else {
        None
    }
}
