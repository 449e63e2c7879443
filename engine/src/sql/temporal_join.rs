//! Planning Flink's event-time temporal join: `FROM orders o [LEFT] JOIN rates FOR
//! SYSTEM_TIME AS OF o.order_time AS r ON o.currency = r.currency`, where `rates` is a
//! versioned table (a Kafka TABLE with a PRIMARY KEY, read from its changelog topic, with
//! an event time) and `o.order_time` the stream's event-time column. The ON clause must
//! name the table's whole key; the rest is checked on each joined row.

use std::fmt;
use std::sync::Arc;

use super::lookup_join::JoinedRelations;
use super::planner::PlannedExpr;
use crate::catalog::Relation;

/// A planned event-time temporal join.
#[derive(Debug, Clone)]
pub struct TemporalJoinPlan {
    /// The versioned table.
    pub table: Arc<Relation>,
    /// LEFT (else INNER).
    pub left_outer: bool,
    /// The key values over the stream's declared columns, cast to the table key's types.
    pub stream_keys: Vec<PlannedExpr>,
    /// The table's key columns, over its declared columns, in the same order.
    pub table_keys: Vec<PlannedExpr>,
    /// The rest of the ON clause, over the stream's columns then the table's.
    pub condition: Option<PlannedExpr>,
    /// The stream's event-time column named by `FOR SYSTEM_TIME AS OF`.
    pub time_column: String,
}

impl fmt::Display for TemporalJoinPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> =
            self.stream_keys.iter().zip(&self.table_keys).map(|(s, t)| format!("{} = {}", s.display, t.display)).collect();
        write!(
            f,
            "temporal join: {} {} ({}) on [{}] as of event time {}",
            if self.left_outer { "LEFT" } else { "INNER" },
            self.table.name,
            self.table.connector,
            keys.join(", "),
            self.time_column
        )?;
        if let Some(c) = &self.condition {
            write!(f, " condition {}", c.display)?;
        }
        Ok(())
    }
}

/// Whether `FOR SYSTEM_TIME AS OF parts` names the stream's event-time column (its
/// WATERMARK column, or ROWTIME for a stream timed by its records) and the table is
/// versioned (a Kafka TABLE with a primary key): then the join is a temporal join in
/// event time; the column's name if so.
pub fn event_time_column(parts: &[String], joined: &JoinedRelations) -> Option<String> {
    if !joined.table.is_changelog() || joined.streams.is_some() {
        return None;
    }
    let (qualifier, column) = match parts {
        [column] => (None, column),
        [qualifier, column] => (Some(qualifier), column),
        _ => return None,
    };
    if qualifier.is_some_and(|q| q != &joined.stream_alias && q != &joined.stream.name) {
        return None;
    }
    match &joined.stream.event_time.column {
        Some(c) if c == column => Some(column.clone()),
        None if column.eq_ignore_ascii_case("rowtime") => Some(column.clone()),
        _ => None,
    }
}
