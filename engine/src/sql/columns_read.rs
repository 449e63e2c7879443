//! Projection pushdown into the decoder: which of a source's declared value columns a
//! query reads. The decoder builds only those and fills the others with NULLs, which no
//! operator looks at (DuckDB's and Flink's file readers skip unread columns the same way;
//! Flink's CSV and JSON formats then convert only the projected fields, so a bad value in
//! a column the query never reads does not make the record malformed there either).
//!
//! A column is read when an expression the front or the aggregation evaluates over the
//! source's rows names it: the WHERE filter, the GROUP BY keys, the aggregates' arguments,
//! ORDER BY and FILTER, the SELECT list of a query without aggregation, and the event-time
//! column; a computed column read (or the event time) reads the columns its expression
//! names. Plans whose operators read source rows in ways not listed here (joins, UNION
//! ALL, MATCH_RECOGNIZE, ML_PREDICT, a TABLE's changelog, record-key columns) read every
//! column.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::PhysicalExpr;

use super::planner::QueryPlan;

/// Per column of `plan.source.physical_schema()`: whether the query reads it. `None`
/// when it reads every column (or when this cannot be told: see the module docs).
pub fn columns_read(plan: &QueryPlan) -> Option<Vec<bool>> {
    let source = &plan.source;
    let everything = plan.match_recognize.is_some()
        || plan.lookup_join.is_some()
        || plan.interval_join.is_some()
        || plan.temporal_join.is_some()
        || !plan.union.is_empty()
        || !plan.models.is_empty()
        || !source.key.is_empty()
        || source.is_changelog();
    if everything {
        return None;
    }
    let mut exprs: Vec<&Arc<dyn PhysicalExpr>> = Vec::new();
    exprs.extend(plan.filter.iter().map(|f| &f.expr));
    let aggregate_inputs: Vec<Arc<dyn PhysicalExpr>>;
    match &plan.aggregate {
        Some(a) => {
            exprs.extend(a.keys.iter().map(|k| &k.expr));
            aggregate_inputs = a
                .aggregates
                .iter()
                .flat_map(|g| {
                    g.function
                        .expressions()
                        .into_iter()
                        .chain(g.function.order_bys().iter().map(|o| o.expr.clone()))
                        .chain(g.filter.clone())
                })
                .collect();
            exprs.extend(aggregate_inputs.iter());
        }
        None => exprs.extend(plan.projection.iter().map(|p| &p.expr)),
    }
    let mut names: HashSet<String> = exprs.into_iter().flat_map(|e| collect_columns(e).into_iter().map(|c| c.name().to_string())).collect();
    names.extend(source.event_time.column.iter().cloned());
    // A computed column reads the columns of its expression (over the physical schema).
    let computed: Vec<String> = names.iter().filter(|n| source.computed.iter().any(|c| &c.name == *n)).cloned().collect();
    for name in computed {
        if let Some(c) = source.computed.iter().find(|c| c.name == name) {
            names.extend(collect_columns(&c.expr).into_iter().map(|c| c.name().to_string()));
        }
    }
    let read: Vec<bool> = source.physical_schema().fields().iter().map(|f| names.contains(f.name())).collect();
    (!read.iter().all(|r| *r)).then_some(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::planner::PlannedStatement;
    use crate::{Engine, Script};

    const LOGS: &str = "CREATE TABLE logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, \
        event_ts BIGINT, ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
        WITH ('connector'='filesystem', 'path'='/tmp/logs.csv', 'format'='csv');\n\
        CREATE TABLE out (a VARCHAR, b BIGINT, c BIGINT) WITH ('connector'='blackhole');\n";

    fn read(query: &str) -> Option<Vec<bool>> {
        let plan =
            Engine::new(None, "t").plan(&[Script { name: "q".into(), sql: format!("{LOGS}{query}") }]).unwrap_or_else(|e| panic!("{e}"));
        let query = plan.statements.into_iter().find_map(|s| match s {
            PlannedStatement::StartQuery(q) => Some(q),
            _ => None,
        });
        columns_read(&query.unwrap_or_else(|| panic!("no query")))
    }

    #[test]
    fn a_window_aggregate_reads_its_keys_arguments_filter_and_event_time() {
        // event_id, account_id, event_type, location_country, event_ts
        let q1 = "INSERT INTO out SELECT event_type, COUNT(*), COUNT(DISTINCT account_id) \
                  FROM TABLE(TUMBLE(TABLE logs, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, event_type;";
        assert_eq!(read(q1), Some(vec![false, true, true, false, true]));
        let filtered = "INSERT INTO out SELECT event_type, COUNT(*), SUM(account_id) FILTER (WHERE location_country = 'DE') \
                  FROM TABLE(TUMBLE(TABLE logs, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) WHERE event_id <> 'x' GROUP BY window_start, window_end, event_type;";
        assert_eq!(read(filtered), None);
    }

    #[test]
    fn a_projection_reads_what_it_selects_and_match_recognize_reads_everything() {
        assert_eq!(read("INSERT INTO out SELECT event_type, account_id, event_ts FROM logs;"), Some(vec![false, true, true, false, true]));
        let mr = "INSERT INTO out SELECT e, 1, 2 FROM logs MATCH_RECOGNIZE (PARTITION BY account_id ORDER BY ts \
                  MEASURES A.event_type AS e PATTERN (A) DEFINE A AS A.event_type = 'login');";
        assert_eq!(read(mr), None);
    }
}
