//! Lookup joins (Flink's JDBC lookup join): each row of a stream is joined with the rows
//! of a PostgreSQL table whose key columns equal the row's values, read from the
//! database when the row is processed. The same plan joins a stream with a Kafka TABLE
//! (ksqlDB's stream–table join, on the table's primary key): the table is materialized
//! from its topic (`crate::runtime::table_state`) and looked up the same way.
//!
//! ```sql
//! SELECT o.id, c.name
//! FROM orders AS o
//! [LEFT] JOIN customers FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.customer_id = c.id
//! ```
//!
//! `customers` is a table with the `postgres` (or `jdbc`) connector; `proc_time` is a
//! processing-time column of the stream (`proc_time AS PROCTIME()`). Flink requires the
//! `FOR SYSTEM_TIME AS OF` clause; Eddy also reads a plain `JOIN customers c ON ...`
//! against such a table as a lookup join, since a PostgreSQL table has no changelog Eddy
//! could join in event time. The ON clause needs at least one equality between a column
//! of the table and an expression over the stream (the lookup key); the rest of it is a
//! join condition on the joined row (a LEFT join pads a row none of whose matches meet it).
//!
//! The join is planned by DataFusion (`SqlToRel`); this module checks the FROM clause,
//! splits the ON clause into lookup keys and the rest ([`lower`]), and describes the result
//! ([`LookupJoinPlan`]). The runtime's `LookupJoin` stage does the reading and joining.

use std::fmt;
use std::sync::Arc;

use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Join, Operator};
use sqlparser::ast::{JoinConstraint, JoinOperator, Query, SetExpr, TableFactor};

use super::parser::{normalize_ident, object_name};
use super::planner::PlannedExpr;
use crate::catalog::{Catalog, Relation};
use crate::error::{Position, SqlError};
use crate::options::ConnectorOptions;

/// INNER or LEFT (Flink's lookup join supports these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupJoinKind {
    /// Rows without a matching table row are dropped.
    Inner,
    /// Rows without a matching table row are kept, the table's columns NULL.
    Left,
}

impl fmt::Display for LookupJoinKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LookupJoinKind::Inner => "INNER",
            LookupJoinKind::Left => "LEFT",
        })
    }
}

/// A planned lookup join. The joined rows are the stream's columns (its declared
/// columns, computed ones included, in order), then every column of the table, in
/// the table's declared order; the WHERE clause and the SELECT list are planned over
/// them.
#[derive(Debug, Clone)]
pub struct LookupJoinPlan {
    /// The table read (the `postgres` connector).
    pub table: Arc<Relation>,
    /// INNER or LEFT.
    pub kind: LookupJoinKind,
    /// The lookup key values, over the stream's rows, each already cast to the type of
    /// its table column.
    pub stream_keys: Vec<PlannedExpr>,
    /// The table's key columns, in the order of `stream_keys`.
    pub table_keys: Vec<String>,
    /// The rest of the ON clause, over the joined row.
    pub condition: Option<PlannedExpr>,
    /// The processing-time column of `FOR SYSTEM_TIME AS OF`, if written.
    pub time_column: Option<String>,
}

impl fmt::Display for LookupJoinPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> =
            self.stream_keys.iter().zip(&self.table_keys).map(|(s, t)| format!("{} = {}.{t}", s.display, self.table.name)).collect();
        let what = if self.table.is_changelog() { "table join" } else { "lookup join" };
        write!(f, "{what}: {} {} ({}) on [{}]", self.kind, self.table.name, self.table.connector, keys.join(", "))?;
        if let Some(c) = &self.condition {
            write!(f, " condition {}", c.display)?;
        }
        if let Some(t) = &self.time_column {
            write!(f, " for system_time as of {t}")?;
        }
        if let ConnectorOptions::Postgres(p) = &self.table.connector {
            match &p.lookup_cache {
                crate::options::LookupCache::None => write!(f, " cache none")?,
                crate::options::LookupCache::Partial { max_rows, .. } => write!(f, " cache partial max-rows {max_rows}")?,
            }
        }
        Ok(())
    }
}

/// What the FROM clause of a join names: the stream read and the table looked up.
#[derive(Debug, Clone)]
pub struct JoinedRelations {
    /// The stream (left side).
    pub stream: Arc<Relation>,
    /// The name the query gives the stream (its alias, else its name).
    pub stream_alias: String,
    /// The PostgreSQL table (right side).
    pub table: Arc<Relation>,
    /// INNER or LEFT.
    pub kind: LookupJoinKind,
    /// Set when the right side is a stream too: an interval join of this kind, with
    /// ksqlDB's `WITHIN` bound when written (Flink's is in the ON clause).
    pub streams: Option<(crate::operators::IntervalJoinKind, Option<crate::sql::ast::JoinWithin>)>,
}

/// A relation named in FROM: the relation, its alias, where its name was written.
type Named = (Arc<Relation>, Option<String>, Option<Position>);

/// Lookup keys (an expression over the stream, a column of the table) and the rest of
/// an ON clause.
pub type LoweredOn = (Vec<(Expr, Column)>, Option<Expr>);

/// The relations of `query`'s join, when its FROM is `stream [AS s] [LEFT] JOIN table
/// [AS t] ON ...`; `None` when the query has no join.
///
/// Errors: a join this engine cannot run, each with the way out: more than one join, a
/// join of two streams, RIGHT/FULL/CROSS joins, `USING`/`NATURAL`, a subquery on either
/// side, or a table that is not in PostgreSQL.
pub fn joined_relations(
    query: &Query,
    catalog: &Catalog,
    within: Option<&(crate::sql::ast::JoinWithin, Option<crate::error::Position>)>,
) -> Result<Option<JoinedRelations>, SqlError> {
    let SetExpr::Select(select) = query.body.as_ref() else { return Ok(None) };
    let [from] = select.from.as_slice() else { return Ok(None) };
    let Some(join) = from.joins.first() else { return Ok(None) };
    let table_name = |factor: &TableFactor| -> Result<Named, SqlError> {
        match factor {
            TableFactor::Table { name, alias, args: None, .. } => {
                let name = object_name(name)?;
                let relation = catalog.get(&name.value).cloned().ok_or_else(|| {
                    let hint = crate::error::closest(&name.value, catalog.names()).map(|c| format!("did you mean \"{c}\"?"));
                    SqlError::new(format!("unknown stream or table \"{}\"", name.value)).at(name.position).maybe_hint(hint)
                })?;
                Ok((relation, alias.as_ref().map(|a| normalize_ident(&a.name)), name.position))
            }
            TableFactor::MatchRecognize { .. } => Err(SqlError::new("a join of the rows of MATCH_RECOGNIZE is not supported yet")
                .hint("write the matches to a stream (CREATE STREAM ... AS SELECT ... MATCH_RECOGNIZE), and join that stream")),
            other => Err(SqlError::new(format!("joins read streams and tables by name, found {other}"))
                .hint("create a stream for the subquery's rows first (CREATE STREAM ... AS SELECT), and join that")),
        }
    };
    let (stream, stream_alias, _) = table_name(&from.relation)?;
    let (table, _, table_position) = table_name(&join.relation)?;
    // Two streams: two Kafka streams, or two files (Flink's filesystem sources, bounded).
    let plain_stream = |r: &Relation| match r.connector {
        ConnectorOptions::Kafka(_) => !r.is_changelog(),
        ConnectorOptions::Filesystem(_) => true,
        _ => false,
    };
    let two_streams = plain_stream(&table);
    if let (Some((_, at)), false) = (within, two_streams) {
        // ksqlDB's words for a bound on a stream-table join.
        return Err(SqlError::new(
            "A window definition was provided for a Stream-Table join. These joins are not windowed. Please drop the window definition (i.e. the WITHIN clause) and try to rerun your query.",
        )
        .at(*at));
    }
    if two_streams {
        if !plain_stream(&stream) || stream.connector.name() != table.connector.name() {
            return Err(SqlError::new(format!(
                "\"{}\" cannot be the left stream of a join with \"{}\": a join of two streams reads two Kafka streams or two files",
                stream.name, table.name
            ))
            .at(table_position));
        }
        if from.joins.len() > 1 {
            return Err(SqlError::new("a query joins two streams at most").at(table_position));
        }
        let (kind, constraint) = match &join.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => (crate::operators::IntervalJoinKind::Inner, c),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (crate::operators::IntervalJoinKind::Left, c),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (crate::operators::IntervalJoinKind::Right, c),
            JoinOperator::FullOuter(c) => (crate::operators::IntervalJoinKind::Full, c),
            _ => return Err(SqlError::new("a join of two streams is [INNER], LEFT, RIGHT or FULL [OUTER] JOIN ... ON").at(table_position)),
        };
        if !matches!(constraint, JoinConstraint::On(_)) {
            return Err(SqlError::new("a join needs an ON clause").at(table_position));
        }
        for (r, what) in [(&stream, "left"), (&table, "right")] {
            if !r.computed.is_empty() && r.computed.iter().any(|c| c.display.to_lowercase().starts_with("proctime(")) {
                return Err(SqlError::new(format!(
                    "the {what} stream \"{}\" has a processing-time column: an interval join is in event time",
                    r.name
                ))
                .at(table_position));
            }
        }
        let stream_alias = stream_alias.unwrap_or_else(|| stream.name.clone());
        return Ok(Some(JoinedRelations {
            stream,
            stream_alias,
            table,
            kind: LookupJoinKind::Inner,
            streams: Some((kind, within.map(|(w, _)| *w))),
        }));
    }
    let (kind, constraint) = match &join.join_operator {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => (LookupJoinKind::Inner, c),
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (LookupJoinKind::Left, c),
        other => {
            let name = format!("{other:?}");
            let name = name.split('(').next().unwrap_or_default().to_uppercase();
            return Err(SqlError::new(format!("{name} joins are not supported"))
                .at(table_position)
                .hint("a lookup join is [INNER] JOIN or LEFT JOIN"));
        }
    };
    if !matches!(constraint, JoinConstraint::On(_)) {
        return Err(SqlError::new("a join needs an ON clause").at(table_position).hint(format!(
            "write ON {}.column = {}.column",
            stream_alias.as_deref().unwrap_or(&stream.name),
            table.name
        )));
    }
    if table.is_changelog() && !table.computed.is_empty() {
        return Err(SqlError::new(format!("joining \"{}\", a table with computed columns, is not supported yet", table.name))
            .at(table_position)
            .hint("join a table declared with its stored columns only"));
    }
    if !matches!(table.connector, ConnectorOptions::Postgres(_)) && !table.is_changelog() {
        let what = match &table.connector {
            ConnectorOptions::Kafka(_) if table.kind == crate::sql::ast::ObjectKind::Table => "a Kafka table without a primary key",
            ConnectorOptions::Kafka(_) => "a Kafka stream",
            other => other.name(),
        };
        return Err(SqlError::new(format!("joining \"{}\" ({what}) is not supported yet", table.name))
            .at(table_position)
            .hint(if two_streams {
                "a stream joins a table by key: a Kafka TABLE with a PRIMARY KEY (ksqlDB), or a PostgreSQL table ('connector'='jdbc' or 'postgres'); a join of two streams needs a time bound (ksqlDB's JOIN ... WITHIN 1 HOUR, Flink's a.ts BETWEEN b.ts - INTERVAL '1' HOUR AND b.ts)"
            } else {
                "a stream joins a table by key: a Kafka TABLE with a PRIMARY KEY (ksqlDB), or a PostgreSQL table ('connector'='jdbc' or 'postgres')"
            }));
    }
    if !stream.connector.is_source() || matches!(stream.connector, ConnectorOptions::Postgres(_)) {
        return Err(SqlError::new(format!("\"{}\" cannot be read as the stream of a join", stream.name))
            .hint("the left side of a lookup join is a Kafka stream or a file"));
    }
    if stream.is_changelog() {
        return Err(SqlError::new(format!("\"{}\" is a table: a lookup join reads a stream", stream.name))
            .hint("join the stream the table is built from"));
    }
    let stream_alias = stream_alias.unwrap_or_else(|| stream.name.clone());
    Ok(Some(JoinedRelations { stream, stream_alias, table, kind, streams: None }))
}

/// Checks `FOR SYSTEM_TIME AS OF column`: it must be a processing-time column of the
/// stream (`AS PROCTIME()`). Returns the column's name.
///
/// Errors: an unknown column, a column of the table, or an event-time column (a temporal
/// join in event time needs a versioned table, which PostgreSQL is not).
pub fn check_time_column(parts: &[String], position: Option<Position>, joined: &JoinedRelations) -> Result<String, SqlError> {
    let (qualifier, column) = match parts {
        [column] => (None, column),
        [qualifier, column] => (Some(qualifier), column),
        _ => return Err(SqlError::new(format!("not a column: {}", parts.join("."))).at(position)),
    };
    if qualifier.is_some_and(|q| q != &joined.stream_alias && q != &joined.stream.name) {
        return Err(SqlError::new(format!("FOR SYSTEM_TIME AS OF names {}, not a column of \"{}\"", parts.join("."), joined.stream_alias))
            .at(position)
            .hint(format!("name the stream's processing-time column: {}.proc_time", joined.stream_alias)));
    }
    let computed = joined.stream.computed.iter().find(|c| &c.name == column);
    match computed {
        Some(c) if c.display.to_lowercase().starts_with("proctime(") => Ok(column.clone()),
        _ => {
            let known = joined.stream.schema.fields().iter().any(|f| f.name() == column);
            let message = if known {
                format!("\"{column}\" is not a processing-time column: a lookup join reads the table as it is when the row is processed")
            } else {
                format!("\"{}\" has no column \"{column}\"", joined.stream.name)
            };
            Err(SqlError::new(message).at(position).hint(format!(
                "declare `proc_time AS PROCTIME()` in \"{}\" and write FOR SYSTEM_TIME AS OF {}.proc_time",
                joined.stream.name, joined.stream_alias
            )))
        }
    }
}

/// Splits DataFusion's join into the lookup keys (pairs of an expression over the stream
/// and a column of the table) and the rest of the ON clause. `stream` and `table` are the
/// two inputs' schemas.
///
/// Errors: the ON clause has no equality between a table column and the stream.
pub fn lower(join: &Join, table_name: &str) -> Result<LoweredOn, SqlError> {
    let stream = join.left.schema();
    let table = join.right.schema();
    let mut keys: Vec<(Expr, Column)> = Vec::new();
    let mut rest: Vec<Expr> = Vec::new();
    let only_in = |e: &Expr, schema: &DFSchema| !e.column_refs().is_empty() && e.column_refs().iter().all(|c| schema.has_column(c));
    // `stream expression = table column`, either way round.
    let key = |l: &Expr, r: &Expr| match (l, r) {
        (s, Expr::Column(c)) | (Expr::Column(c), s) if table.has_column(c) && only_in(s, stream) => Some((s.clone(), c.clone())),
        _ => None,
    };
    for (l, r) in &join.on {
        match key(l, r) {
            Some(k) => keys.push(k),
            None => rest.push(Expr::BinaryExpr(BinaryExpr::new(Box::new(l.clone()), Operator::Eq, Box::new(r.clone())))),
        }
    }
    if let Some(filter) = &join.filter {
        for conjunct in split_conjunction(filter) {
            match conjunct {
                Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => match key(left, right) {
                    Some(k) => keys.push(k),
                    None => rest.push(conjunct.clone()),
                },
                other => rest.push(other.clone()),
            }
        }
    }
    if keys.is_empty() {
        return Err(SqlError::new(format!("a lookup join needs an equality between a column of \"{table_name}\" and the stream"))
            .hint(format!("write ON s.key = {table_name}.key_column; other conditions may follow with AND")));
    }
    let rest = rest.into_iter().reduce(|a, b| a.and(b));
    Ok((keys, rest))
}
