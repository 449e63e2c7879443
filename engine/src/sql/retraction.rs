//! Aggregating a TABLE: the aggregates are rewritten over the changelog's `__weight`
//! (+1 for a row that enters the table, -1 for one an update or a delete takes back,
//! [`crate::operators::changelog`]), so that a count goes back down (ksqlDB's "count back
//! to zero": 1, 2, 1, 0) without retractable accumulators:
//!
//! - `COUNT(*)` is `SUM(__weight)`; `COUNT(x)` is `SUM(CASE WHEN x IS NULL THEN 0 ELSE
//!   __weight END)`;
//! - `SUM(x)` is `SUM(x * __weight)`;
//! - `AVG(x)` is `SUM(x * __weight)` over the weighted `COUNT(x)` (NULL at zero rows).
//!
//! Other aggregates (MIN, MAX, LATEST_BY_OFFSET, COLLECT_LIST, ...) cannot take a row
//! back this way and are refused with ksqlDB's error naming them all (its
//! `SchemaKGroupedTable`: "The aggregation functions MIN and MAX cannot be applied to a
//! table source, only to a stream source.").

use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, SetExpr, VisitMut};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::event_time::expr_position;
use crate::error::{Position, SqlError};

/// The weight column the changelog adds (see [`crate::operators::changelog::WEIGHT`]).
pub use crate::operators::changelog::WEIGHT;

/// `query` with its aggregates over `__weight`. `is_aggregate` tells an aggregate
/// function's name (lower-case) from a scalar one's.
///
/// Errors: an aggregate other than COUNT, SUM and AVG (ksqlDB's text, every such
/// function named, at the first one's position), an aggregate with DISTINCT or FILTER.
pub fn weighted_aggregates(query: &Query, is_aggregate: &dyn Fn(&str) -> bool) -> Result<Query, SqlError> {
    let mut query = query.clone();
    let mut error: Option<SqlError> = None;
    let mut unsupported: Vec<(String, Option<Position>)> = Vec::new();
    let mut rewriter = super::window::RewriteExprs(|e: &mut Expr| {
        if error.is_some() {
            return;
        }
        match rewrite(e, is_aggregate, &mut unsupported) {
            Ok(Some(replacement)) => *e = replacement,
            Ok(None) => {}
            Err(err) => error = Some(err),
        }
    });
    if let SetExpr::Select(select) = query.body.as_mut() {
        for item in select.projection.iter_mut() {
            let _ = item.visit(&mut rewriter);
        }
        if let Some(having) = select.having.as_mut() {
            let _ = having.visit(&mut rewriter);
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    if let Some((_, position)) = unsupported.first() {
        let names: Vec<&str> = unsupported.iter().map(|(n, _)| n.as_str()).collect();
        let joined = match names.as_slice() {
            [one] => one.to_string(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => String::new(),
        };
        let plural = if names.len() == 1 { "" } else { "s" };
        let err = SqlError::new(format!(
            "The aggregation function{plural} {joined} cannot be applied to a table source, only to a stream source."
        ))
        .hint("only COUNT, SUM and AVG take back a row that an update or a delete replaces; aggregate the table's source stream instead");
        return Err(err.at(*position));
    }
    Ok(query)
}

/// The weighted form of `e` when it is an aggregate call; `None` for anything else, and
/// for an aggregate that cannot be weighted (its name and position added to
/// `unsupported`, once per name).
fn rewrite(
    e: &Expr,
    is_aggregate: &dyn Fn(&str) -> bool,
    unsupported: &mut Vec<(String, Option<Position>)>,
) -> Result<Option<Expr>, SqlError> {
    let Expr::Function(f) = e else { return Ok(None) };
    let name = f.name.to_string().to_lowercase();
    if !is_aggregate(&name) {
        return Ok(None);
    }
    if f.filter.is_some() {
        return Err(SqlError::new(format!("{}(...) FILTER (WHERE ...) over a TABLE is not supported", name.to_uppercase()))
            .at(expr_position(e))
            .hint("move the condition into the aggregate, e.g. SUM(CASE WHEN c THEN x END)"));
    }
    let FunctionArguments::List(list) = &f.args else { return Ok(None) };
    if list.duplicate_treatment.is_some() {
        return Err(SqlError::new(format!("{}(DISTINCT ...) over a TABLE is not supported", name.to_uppercase()))
            .at(expr_position(e))
            .hint("a distinct count cannot take back an updated row; aggregate the table's source stream"));
    }
    let arg = match list.args.as_slice() {
        [] | [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] => None,
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] => Some(x.to_string()),
        _ => None,
    };
    let counted = |x: &str| format!("SUM(CASE WHEN ({x}) IS NULL THEN 0 ELSE {WEIGHT} END)");
    let sql = match (name.as_str(), arg) {
        ("count", None) => format!("SUM({WEIGHT})"),
        ("count", Some(x)) => counted(&x),
        ("sum", Some(x)) => format!("SUM(({x}) * {WEIGHT})"),
        ("avg", Some(x)) => format!("CAST(SUM(({x}) * {WEIGHT}) AS DOUBLE) / NULLIF({}, 0)", counted(&x)),
        _ => {
            let name = name.to_uppercase();
            if !unsupported.iter().any(|(n, _)| n == &name) {
                unsupported.push((name, expr_position(e)));
            }
            return Ok(None);
        }
    };
    parse(&sql).map(Some)
}

fn parse(sql: &str) -> Result<Expr, SqlError> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::new(format!("cannot plan the table aggregation: {e}")))
}

#[cfg(test)]
mod tests {
    use sqlparser::ast::Statement;

    use super::*;

    fn rewritten(sql: &str) -> Result<String, String> {
        let Ok(Statement::Query(query)) = Parser::parse_sql(&GenericDialect {}, sql).map(|mut s| s.remove(0)) else {
            return Err("not a query".into());
        };
        let aggregates = |n: &str| matches!(n, "count" | "sum" | "avg" | "min");
        weighted_aggregates(&query, &aggregates).map(|q| q.to_string()).map_err(|e| e.message)
    }

    #[test]
    fn count_sum_and_avg_are_weighted() {
        assert_eq!(
            rewritten("SELECT id, COUNT(*) AS n, SUM(v), AVG(v) FROM t GROUP BY id HAVING COUNT(v) > 0"),
            Ok("SELECT id, SUM(__weight) AS n, SUM((v) * __weight), CAST(SUM((v) * __weight) AS DOUBLE) / NULLIF(SUM(CASE WHEN (v) IS NULL THEN 0 ELSE __weight END), 0) FROM t GROUP BY id HAVING SUM(CASE WHEN (v) IS NULL THEN 0 ELSE __weight END) > 0".into())
        );
        assert_eq!(rewritten("SELECT UPPER(k), COUNT() FROM t GROUP BY k"), Ok("SELECT UPPER(k), SUM(__weight) FROM t GROUP BY k".into()));
    }

    #[test]
    fn other_aggregates_are_refused() {
        assert_eq!(
            rewritten("SELECT MIN(v) FROM t GROUP BY k"),
            Err("The aggregation function MIN cannot be applied to a table source, only to a stream source.".into())
        );
        assert_eq!(
            rewritten("SELECT COUNT(DISTINCT v) FROM t GROUP BY k"),
            Err("COUNT(DISTINCT ...) over a TABLE is not supported".into())
        );
    }
}
