//! Planning the interval join of two streams: ksqlDB's `FROM a JOIN b WITHIN 1 HOUR [GRACE
//! PERIOD 10 MINUTES] ON a.k = b.k` and Flink's `FROM a JOIN b ON a.k = b.k AND a.ts
//! BETWEEN b.ts - INTERVAL '1' HOUR AND b.ts` (also written with `>=`/`<=`), INNER, LEFT,
//! RIGHT and FULL. The equalities become the join keys; the bound says how far the right
//! row's event time may be from the left row's; the rest of the ON clause is checked on
//! each pair. A join of two streams without a bound is refused (it would keep every row
//! forever) unless the session sets Flink's `table.exec.state.ttl`: then it is Flink's
//! regular join, INNER only (an outer one retracts its padded rows), each row kept for the
//! TTL in processing time.
//!
//! The bound compares the streams' event times (ksqlDB: each stream's ROWTIME or
//! `timestamp` column; Flink: the columns of their WATERMARK declarations).

use std::fmt;
use std::sync::Arc;

use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use super::ast::JoinWithin;
use super::planner::PlannedExpr;
use crate::catalog::Relation;
use crate::error::SqlError;
use crate::operators::IntervalJoinKind;

/// ksqlDB's grace period of a stream-stream join without `GRACE PERIOD` (ms): 24 hours.
pub const DEFAULT_GRACE_MS: i64 = 24 * 3_600_000;

/// The bound (and grace period) of a join of two streams without a time bound, whose
/// rows are kept for the session's `table.exec.state.ttl` instead (Flink's regular join).
pub const UNBOUNDED: i64 = i64::MAX;

/// A planned interval join.
#[derive(Debug, Clone)]
pub struct IntervalJoinPlan {
    /// The right stream.
    pub right: Arc<Relation>,
    /// INNER, LEFT, RIGHT or FULL.
    pub kind: IntervalJoinKind,
    /// The key values over the left stream's declared columns.
    pub left_keys: Vec<PlannedExpr>,
    /// The key values over the right stream's declared columns, of the same types.
    pub right_keys: Vec<PlannedExpr>,
    /// The rest of the ON clause, over the left's columns then the right's.
    pub condition: Option<PlannedExpr>,
    /// How far the right row's time may be before the left row's (ms).
    pub before_ms: i64,
    /// How far the right row's time may be after the left row's (ms).
    pub after_ms: i64,
    /// How long after the bound a late row is still joined (ms).
    pub grace_ms: i64,
    /// A regular join (Flink's, no time bound; the bounds are [`UNBOUNDED`]): how long
    /// each row is kept, in processing time (ms), from `table.exec.state.ttl`.
    pub state_ttl_ms: Option<i64>,
}

impl fmt::Display for IntervalJoinPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> =
            self.left_keys.iter().zip(&self.right_keys).map(|(l, r)| format!("{} = {}", l.display, r.display)).collect();
        if let Some(ttl) = self.state_ttl_ms {
            write!(
                f,
                "regular join: {} {} ({}) on [{}], rows kept {} (table.exec.state.ttl)",
                self.kind,
                self.right.name,
                self.right.connector,
                keys.join(", "),
                super::ast::duration(ttl)
            )?;
            if let Some(c) = &self.condition {
                write!(f, " condition {}", c.display)?;
            }
            return Ok(());
        }
        write!(
            f,
            "interval join: {} {} ({}) on [{}] right time within [left time - {}, left time + {}], grace {}",
            self.kind,
            self.right.name,
            self.right.connector,
            keys.join(", "),
            super::ast::duration(self.before_ms),
            super::ast::duration(self.after_ms),
            super::ast::duration(self.grace_ms)
        )?;
        if let Some(c) = &self.condition {
            write!(f, " condition {}", c.display)?;
        }
        Ok(())
    }
}

/// The bound of a join of `left` and `right`: ksqlDB's `within` if written, else the
/// first BETWEEN (or pair of `>=`/`<=`) in `rest` comparing the two streams' event-time
/// columns. Returns (before, after, grace) in ms; with no bound and a state TTL
/// (`ttl_ms`, Flink's `table.exec.state.ttl`), [`UNBOUNDED`] for all three.
///
/// Errors: no bound and no TTL (naming what to add), or a bound over other columns.
pub fn bound(
    within: Option<JoinWithin>,
    rest: Option<&Expr>,
    left: &Relation,
    right: &Relation,
    schemas: (&DFSchema, &DFSchema),
    ttl_ms: Option<u64>,
) -> Result<(i64, i64, i64), SqlError> {
    if let Some(w) = within {
        return Ok((w.before_ms, w.after_ms, w.grace_ms.unwrap_or(DEFAULT_GRACE_MS)));
    }
    let refuse = || -> Result<(i64, i64, i64), SqlError> {
        if ttl_ms.is_some() {
            return Ok((UNBOUNDED, UNBOUNDED, UNBOUNDED));
        }
        let lt = left.event_time.column.clone().unwrap_or_else(|| "ROWTIME".into());
        let rt = right.event_time.column.clone().unwrap_or_else(|| "ROWTIME".into());
        Err(SqlError::new(format!("a join of two streams needs a time bound (\"{}\" with \"{}\")", left.name, right.name)).hint(format!(
            "add one: ksqlDB's JOIN {r} WITHIN 1 HOUR ON ..., or Flink's ON ... AND {l}.{lt} BETWEEN {r}.{rt} - INTERVAL '1' HOUR AND {r}.{rt} (the streams' event-time columns); or bound the state with Flink's SET 'table.exec.state.ttl' = '1 h' (each row is kept that long); without either every row would be kept forever",
            l = left.name,
            r = right.name
        )))
    };
    let (Some(lt), Some(rt)) = (&left.event_time.column, &right.event_time.column) else { return refuse() };
    let Some(rest) = rest else { return refuse() };
    // Constraints on the right row's time relative to the left's: tr >= tl - before,
    // tr <= tl + after.
    let mut before: Option<i64> = None;
    let mut after: Option<i64> = None;
    let is_time = |c: &Column| -> Option<bool> {
        if c.name == *lt && schemas.0.has_column(c) {
            Some(true)
        } else if c.name == *rt && schemas.1.has_column(c) {
            Some(false)
        } else {
            None
        }
    };
    let side = |e: &Expr| -> Option<(bool, i64)> { time_term(e, &is_time) };
    for conjunct in split_conjunction(rest) {
        match conjunct {
            Expr::Between(b) if !b.negated => {
                let (Some((e_left, 0)), Some((lo_left, lo)), Some((hi_left, hi))) = (side(&b.expr), side(&b.low), side(&b.high)) else {
                    continue;
                };
                match (e_left, lo_left, hi_left) {
                    // tl in [tr + lo, tr + hi]: tr in [tl - hi, tl - lo].
                    (true, false, false) => {
                        before = Some(hi);
                        after = Some(-lo);
                    }
                    // tr in [tl + lo, tl + hi].
                    (false, true, true) => {
                        before = Some(-lo);
                        after = Some(hi);
                    }
                    _ => {}
                }
            }
            Expr::BinaryExpr(BinaryExpr { left: l, op, right: r }) => {
                let (Some((l_left, l_off)), Some((r_left, r_off))) = (side(l), side(r)) else { continue };
                if l_left == r_left {
                    continue;
                }
                // Written as x op y with x = t_a + l_off, y = t_b + r_off; as tr - tl.
                let (op, d) = match (l_left, op) {
                    // tl + l_off op tr + r_off  =>  tr - tl  (flipped op)  l_off - r_off
                    (true, Operator::GtEq | Operator::Gt) => (Operator::LtEq, l_off - r_off),
                    (true, Operator::LtEq | Operator::Lt) => (Operator::GtEq, l_off - r_off),
                    // tr + l_off op tl + r_off  =>  tr - tl op r_off - l_off
                    (false, Operator::GtEq | Operator::Gt) => (Operator::GtEq, r_off - l_off),
                    (false, Operator::LtEq | Operator::Lt) => (Operator::LtEq, r_off - l_off),
                    _ => continue,
                };
                match op {
                    Operator::GtEq => before = Some(-d),
                    _ => after = Some(d),
                }
            }
            _ => {}
        }
    }
    match (before, after) {
        (Some(b), Some(a)) if -b <= a => Ok((b, a, 0)),
        (Some(_), Some(_)) => {
            Err(SqlError::new("the join's time bound is empty: no pair of rows can meet it").hint("check the order of BETWEEN's bounds"))
        }
        _ => refuse(),
    }
}

/// `e` as a stream's event time plus a constant: (whether it is the left stream's, ms).
fn time_term(e: &Expr, is_time: &dyn Fn(&Column) -> Option<bool>) -> Option<(bool, i64)> {
    match e {
        Expr::Column(c) => is_time(c).map(|left| (left, 0)),
        Expr::Cast(c) => time_term(&c.expr, is_time),
        Expr::BinaryExpr(BinaryExpr { left, op: op @ (Operator::Plus | Operator::Minus), right }) => {
            let (is_left, base) = time_term(left, is_time)?;
            let ms = interval_ms(right)?;
            Some((is_left, if *op == Operator::Plus { base + ms } else { base - ms }))
        }
        _ => None,
    }
}

/// A constant interval in ms.
fn interval_ms(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::IntervalDayTime(Some(d)) => Some(i64::from(d.days) * 86_400_000 + i64::from(d.milliseconds)),
            ScalarValue::IntervalMonthDayNano(Some(m)) if m.months == 0 => Some(i64::from(m.days) * 86_400_000 + m.nanoseconds / 1_000_000),
            ScalarValue::DurationMillisecond(Some(ms)) => Some(*ms),
            _ => None,
        },
        Expr::Cast(c) => interval_ms(&c.expr),
        _ => None,
    }
}

/// Flink's comma join, `FROM a, b WHERE a.k = b.k AND <bound>`, as the join it means:
/// `FROM a JOIN b ON <the WHERE clause>` (Flink recognizes an interval join in both).
/// Other FROM lists are left alone.
pub fn comma_join(select: &mut sqlparser::ast::Select) {
    use sqlparser::ast::{Join, JoinConstraint, JoinOperator, TableFactor};
    let plain = |f: &sqlparser::ast::TableWithJoins| f.joins.is_empty() && matches!(f.relation, TableFactor::Table { .. });
    if select.from.len() != 2 || !select.from.iter().all(plain) || select.selection.is_none() {
        return;
    }
    let Some(on) = select.selection.take() else { return };
    let right = select.from.remove(1);
    select.from[0].joins.push(Join { relation: right.relation, global: false, join_operator: JoinOperator::Inner(JoinConstraint::On(on)) });
}
