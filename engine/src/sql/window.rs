//! Normalizes the three ways to write a windowed aggregation into one form, so that
//! they plan to the same pipeline (tested by golden EXPLAIN output):
//!
//! | written | dialect |
//! |---|---|
//! | `FROM s WINDOW TUMBLING (SIZE 3 SECONDS) GROUP BY k` with `WINDOWSTART` | ksqlDB |
//! | `FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY k, window_start, window_end` | Flink window TVF |
//! | `FROM s GROUP BY k, TUMBLE(ts, INTERVAL '3' SECOND)` with `TUMBLE_START(...)` | Flink legacy group window |
//!
//! The normal form is `FROM s GROUP BY k, window_start, window_end`, planned against
//! `s` with two extra `TIMESTAMP(3)` columns `window_start` and `window_end` (filled by
//! the window operator, never read from records), plus the [`WindowSpec`].
//! The same pass maps ksqlDB's `LATEST_BY_OFFSET` / `EARLIEST_BY_OFFSET` to
//! `last_value` / `first_value`, and orders Flink's `FIRST_VALUE` / `LAST_VALUE` by event time.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, GroupByExpr, Ident, ObjectName, OrderByExpr,
    OrderByOptions, Query, SelectItem, SetExpr, TableFactor, VisitMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::ast::{Emit, StreamClauses, WindowKind};
use super::event_time::{expect_interval, expr_position};
use super::parser::normalize_ident;
use crate::catalog::Catalog;
use crate::error::{Position, SqlError};

/// Name of the window start column (`WINDOWSTART` in ksqlDB).
pub const WINDOW_START: &str = "window_start";
/// Name of the window end column (`WINDOWEND` in ksqlDB).
pub const WINDOW_END: &str = "window_end";

/// A column named by a window function, with where it was written.
type TimeColumn = (String, Option<Position>);

/// How the window was written (for EXPLAIN; the plan is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSyntax {
    /// `WINDOW TUMBLING (...)`.
    Ksql,
    /// `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), ...))`.
    FlinkTvf,
    /// `GROUP BY TUMBLE(ts, ...)`.
    FlinkGroupWindow,
}

/// A query's window after normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// Tumbling, hopping or session, with sizes in ms.
    pub kind: WindowKind,
    /// Grace period (ms): how long after `window_end` rows are still accepted before the
    /// window fires (ksqlDB).
    pub grace_ms: i64,
    /// Allowed lateness (ms): how long a fired window is kept, late rows re-emitting it
    /// (Flink's `allowedLateness`; the source's `'allowed-lateness'`).
    pub allowed_lateness_ms: i64,
    /// How it was written.
    pub syntax: WindowSyntax,
}

/// A query rewritten to the normal form.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// The rewritten query.
    pub query: Query,
    /// Its window, if any.
    pub window: Option<WindowSpec>,
    /// When results are emitted.
    pub emit: Emit,
}

/// Rewrites `query` to the normal form. `catalog` resolves the source's event-time
/// column (window functions must name it; `FIRST_VALUE` is ordered by it).
///
/// Errors: two window forms at once, a window function with wrong arguments, a time
/// column that is not the source's event time, `EMIT FINAL` without a window, each with
/// its position.
pub fn normalize(query: &Query, clauses: &StreamClauses, catalog: &Catalog) -> Result<Normalized, SqlError> {
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Ok(Normalized { query, window: None, emit: clauses.emit.map(|e| e.0).unwrap_or(Emit::Changes) });
    };
    // The window, and the time column it names (Flink forms) with its position.
    let mut window: Option<(WindowSpec, Option<TimeColumn>)> = None;

    // Flink window TVF in FROM.
    if let Some(from) = select.from.first_mut() {
        if let TableFactor::TableFunction { expr: Expr::Function(f), alias } = &from.relation {
            let fname = f.name.to_string().to_uppercase();
            let position = expr_position(&Expr::Function(f.clone()));
            let args = plain_args(&f.args, &fname, position)?;
            let (table, time, kind) = match (fname.as_str(), args.as_slice()) {
                ("TUMBLE", [t, d, size]) => (t, d, WindowKind::Tumbling { size: expect_interval(size, "the window size")? }),
                ("HOP", [t, d, slide, size]) => {
                    let advance = expect_interval(slide, "the hop slide")?;
                    let size = expect_interval(size, "the hop size")?;
                    check_hop(size, advance, position)?;
                    (t, d, WindowKind::Hopping { size, advance })
                }
                ("SESSION", [t, d, gap]) => (t, d, WindowKind::Session { gap: expect_interval(gap, "the session gap")? }),
                ("CUMULATE", _) => {
                    return Err(SqlError::new("CUMULATE windows are not supported").at(position).hint("use TUMBLE, HOP or SESSION"))
                }
                (name @ ("TUMBLE" | "HOP" | "SESSION"), _) => {
                    return Err(SqlError::new(format!("wrong arguments for {name}")).at(position).hint(tvf_hint(name)))
                }
                (other, _) => {
                    return Err(SqlError::new(format!("unsupported table function {other}"))
                        .at(position)
                        .hint("window table functions are TUMBLE, HOP and SESSION"))
                }
            };
            let table_name = match table {
                Expr::Identifier(i) => normalize_ident(i),
                other => {
                    return Err(SqlError::new(format!("the first argument of {fname} must be TABLE name, found {other}"))
                        .at(expr_position(other))
                        .hint(tvf_hint(&fname)))
                }
            };
            let time_column = descriptor(time, &fname)?;
            let mut relation = table_factor(&table_name)?;
            if let (TableFactor::Table { alias: a, .. }, Some(alias)) = (&mut relation, alias) {
                *a = Some(alias.clone());
            }
            from.relation = relation;
            window = Some((WindowSpec { kind, grace_ms: 0, allowed_lateness_ms: 0, syntax: WindowSyntax::FlinkTvf }, Some(time_column)));
        }
    }

    // Flink legacy group window in GROUP BY.
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        let mut found = None;
        for (i, e) in exprs.iter().enumerate() {
            if let Expr::Function(f) = e {
                let fname = f.name.to_string().to_uppercase();
                if matches!(fname.as_str(), "TUMBLE" | "HOP" | "SESSION") {
                    found = Some((i, f.clone(), fname));
                    break;
                }
            }
        }
        if let Some((i, f, fname)) = found {
            let position = expr_position(&Expr::Function(f.clone()));
            if window.is_some() {
                return Err(SqlError::new("the query has two windows").at(position).hint("keep one window"));
            }
            let args = plain_args(&f.args, &fname, position)?;
            let (time, kind) = match (fname.as_str(), args.as_slice()) {
                ("TUMBLE", [t, size]) => (t, WindowKind::Tumbling { size: expect_interval(size, "the window size")? }),
                ("HOP", [t, slide, size]) => {
                    let advance = expect_interval(slide, "the hop slide")?;
                    let size = expect_interval(size, "the hop size")?;
                    check_hop(size, advance, position)?;
                    (t, WindowKind::Hopping { size, advance })
                }
                ("SESSION", [t, gap]) => (t, WindowKind::Session { gap: expect_interval(gap, "the session gap")? }),
                _ => {
                    return Err(SqlError::new(format!("wrong arguments for {fname}"))
                        .at(position)
                        .hint(format!("write GROUP BY {fname}(ts, INTERVAL '3' SECOND)")))
                }
            };
            let time_column = match time {
                Expr::Identifier(id) => (normalize_ident(id), Position::from_location(id.span.start)),
                other => {
                    return Err(SqlError::new(format!("the first argument of {fname} must be the event-time column, found {other}"))
                        .at(expr_position(other)))
                }
            };
            exprs.remove(i);
            exprs.push(ident(WINDOW_START));
            exprs.push(ident(WINDOW_END));
            window =
                Some((WindowSpec { kind, grace_ms: 0, allowed_lateness_ms: 0, syntax: WindowSyntax::FlinkGroupWindow }, Some(time_column)));
        }
    }

    // ksqlDB WINDOW clause.
    if let Some(w) = &clauses.window {
        if window.is_some() {
            return Err(SqlError::new("the query has two windows").at(w.position).hint("keep one window"));
        }
        // The window is always part of the key: WINDOWSTART/WINDOWEND written in GROUP BY
        // (as some ksqlDB users do) name the same key, once.
        if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
            exprs.retain(|e| {
                !matches!(e, Expr::Identifier(i) if i.quote_style.is_none()
                    && matches!(i.value.to_uppercase().as_str(), "WINDOWSTART" | "WINDOWEND" | "WINDOW_START" | "WINDOW_END"))
            });
        }
        match &mut select.group_by {
            GroupByExpr::Expressions(exprs, _) if !exprs.is_empty() => {
                exprs.push(ident(WINDOW_START));
                exprs.push(ident(WINDOW_END));
            }
            _ => return Err(SqlError::new("a WINDOW needs GROUP BY").at(w.position).hint("add GROUP BY key, or remove the WINDOW")),
        }
        window =
            Some((WindowSpec { kind: w.kind, grace_ms: w.grace.unwrap_or(0), allowed_lateness_ms: 0, syntax: WindowSyntax::Ksql }, None));
    }

    // The source and its event time.
    let source = match select.from.first().map(|f| &f.relation) {
        Some(TableFactor::Table { name, .. }) => catalog.get(&normalize_object(name)).cloned(),
        _ => None,
    };
    let event_column = source.as_ref().and_then(|s| s.event_time.column.clone());
    if let (Some((spec, _)), Some(source)) = (&mut window, &source) {
        spec.allowed_lateness_ms = source.event_time.allowed_lateness_ms;
        if spec.allowed_lateness_ms > 0 && matches!(spec.kind, WindowKind::Session { .. }) {
            return Err(SqlError::new(format!("'allowed-lateness' of {} is not supported for session windows", source.name))
                .hint("a late row could merge sessions already emitted; use a grace period (GRACE PERIOD) instead"));
        }
    }
    if let (Some((spec, Some((time, position)))), Some(source)) = (&window, &source) {
        if event_column.as_deref() != Some(time.as_str()) {
            let hint = match &event_column {
                Some(c) => format!("the event-time column of {} is \"{c}\"", source.name),
                None => format!("declare it on {}: WATERMARK FOR {time} AS {time} - INTERVAL '5' SECOND", source.name),
            };
            let what = match spec.syntax {
                WindowSyntax::FlinkTvf => "DESCRIPTOR",
                _ => "the window function",
            };
            return Err(SqlError::new(format!("{what} names \"{time}\", which is not the event-time column of {}", source.name))
                .at(*position)
                .hint(hint));
        }
    }

    if let Some((spec, _)) = &window {
        let groups_by = |name: &str| match &select.group_by {
            GroupByExpr::Expressions(exprs, _) => exprs.iter().any(|e| matches!(e, Expr::Identifier(i) if normalize_ident(i) == name)),
            GroupByExpr::All(_) => false,
        };
        if spec.syntax == WindowSyntax::FlinkTvf && !(groups_by(WINDOW_START) && groups_by(WINDOW_END)) {
            return Err(SqlError::new("a window table function needs GROUP BY window_start, window_end")
                .hint("add window_start, window_end to GROUP BY (Flink's window aggregation)"));
        }
    }

    // Window columns, legacy window functions, ksqlDB aggregate names.
    let windowed = window.is_some();
    let mut error: Option<SqlError> = None;
    let _ = query.visit(&mut RewriteExprs(|e: &mut Expr| rewrite_expr(e, windowed, event_column.as_deref(), &mut error)));
    if let Some(e) = error {
        return Err(e);
    }

    let default_emit = match window.as_ref().map(|w| w.0.syntax) {
        Some(WindowSyntax::FlinkTvf | WindowSyntax::FlinkGroupWindow) => Emit::Final,
        _ => Emit::Changes,
    };
    let emit = clauses.emit.map(|e| e.0).unwrap_or(default_emit);
    if emit == Emit::Final && !windowed {
        return Err(SqlError::new("EMIT FINAL needs a window")
            .at(clauses.emit.and_then(|e| e.1))
            .hint("add WINDOW TUMBLING (SIZE ...), or use EMIT CHANGES for a continuously updated table"));
    }
    Ok(Normalized { query, window: window.map(|w| w.0), emit })
}

/// Most windows one row may fall in (hopping size / advance): each costs an update.
pub const MAX_WINDOWS_PER_ROW: i64 = 10_000;

fn check_hop(size: i64, advance: i64, position: Option<Position>) -> Result<(), SqlError> {
    if size / advance > MAX_WINDOWS_PER_ROW {
        return Err(SqlError::new(format!(
            "a hopping window of {} every {} puts each row in {} windows; at most {MAX_WINDOWS_PER_ROW} are supported",
            super::ast::duration(size),
            super::ast::duration(advance),
            size / advance
        ))
        .at(position)
        .hint("use a larger slide"));
    }
    if advance > size {
        return Err(SqlError::new("a hopping window's slide is larger than its size: rows would fall in no window")
            .at(position)
            .hint("HOP(TABLE t, DESCRIPTOR(ts), slide, size) takes the slide first"));
    }
    Ok(())
}

fn tvf_hint(name: &str) -> String {
    match name {
        "HOP" => "write HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECONDS, INTERVAL '1' MINUTE) (slide, then size)".into(),
        "SESSION" => "write SESSION(TABLE t PARTITION BY key, DESCRIPTOR(ts), INTERVAL '5' MINUTES)".into(),
        _ => "write TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '3' SECONDS)".into(),
    }
}

fn plain_args(args: &FunctionArguments, fname: &str, position: Option<Position>) -> Result<Vec<Expr>, SqlError> {
    let FunctionArguments::List(list) = args else {
        return Err(SqlError::new(format!("{fname} needs arguments")).at(position).hint(tvf_hint(fname)));
    };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
            other => Err(SqlError::new(format!("unsupported argument {other} of {fname}")).at(position).hint(tvf_hint(fname))),
        })
        .collect()
}

/// `DESCRIPTOR(ts)` → `ts`.
fn descriptor(expr: &Expr, fname: &str) -> Result<TimeColumn, SqlError> {
    if let Expr::Function(f) = expr {
        if f.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") {
            if let Ok(args) = plain_args(&f.args, fname, None) {
                if let [Expr::Identifier(i)] = args.as_slice() {
                    return Ok((normalize_ident(i), Position::from_location(i.span.start)));
                }
            }
        }
    }
    Err(SqlError::new(format!("the second argument of {fname} must be DESCRIPTOR(time column), found {expr}"))
        .at(expr_position(expr))
        .hint(tvf_hint(fname)))
}

/// ksqlDB's windowed table: `CREATE TABLE t AS SELECT id, COUNT(*) FROM s WINDOW
/// TUMBLING (...) GROUP BY id` has the window in its key without selecting it. The new
/// table gets `WINDOWSTART` and `WINDOWEND` (ksqlDB's names; `windowstart` and
/// `windowend` once normalized, `TIMESTAMP(3)`) after the leading plain columns, so its
/// key is the group key plus the window start, as ksqlDB's windowed key is. `None` when
/// the query has no ksqlDB `WINDOW` clause, selects `*`, or already selects a window column.
pub fn with_window_columns(query: &Query, clauses: &StreamClauses) -> Option<Query> {
    clauses.window.as_ref()?;
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else { return None };
    let mut selects_window = false;
    for item in &select.projection {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => return None,
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                let _ = sqlparser::ast::visit_expressions(e, |e| {
                    if let Expr::Identifier(i) = e {
                        let upper = i.value.to_uppercase();
                        if matches!(upper.as_str(), "WINDOWSTART" | "WINDOWEND" | "WINDOW_START" | "WINDOW_END") {
                            selects_window = true;
                        }
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
            _ => {}
        }
    }
    if selects_window {
        return None;
    }
    let at = select
        .projection
        .iter()
        .position(|item| !matches!(item, SelectItem::UnnamedExpr(Expr::Identifier(_) | Expr::CompoundIdentifier(_))))
        .unwrap_or(select.projection.len());
    for (offset, name) in ["WINDOWSTART", "WINDOWEND"].into_iter().enumerate() {
        select.projection.insert(at + offset, SelectItem::ExprWithAlias { expr: ident(name), alias: Ident::new(name.to_lowercase()) });
    }
    Some(query)
}

fn normalize_object(name: &ObjectName) -> String {
    name.0.last().and_then(|p| p.as_ident()).map(normalize_ident).unwrap_or_default()
}

/// A plain `FROM name` table factor, made by sqlparser itself so that it stays
/// complete whatever fields sqlparser adds.
pub(crate) fn table_factor(name: &str) -> Result<TableFactor, SqlError> {
    let sql = format!("SELECT 1 FROM \"{}\"", name.replace('"', "\"\""));
    let statement = Parser::new(&GenericDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| SqlError::new(format!("cannot read from \"{name}\": {e}")))?;
    match *statement.body {
        SetExpr::Select(s) => s.from.into_iter().next().map(|t| t.relation).ok_or_else(|| SqlError::new("no FROM")),
        _ => Err(SqlError::new("no FROM")),
    }
}

fn ident(name: &str) -> Expr {
    Expr::Identifier(Ident::new(name))
}

/// A literal function argument's text, upper-cased (`TRUE`, `FALSE`, `3`).
fn function_arg_text(arg: &FunctionArg) -> String {
    arg.to_string().to_uppercase()
}

fn rewrite_expr(e: &mut Expr, windowed: bool, event_column: Option<&str>, error: &mut Option<SqlError>) {
    match e {
        // `SUBSTRING(s FROM p FOR n)` and `SUBSTR(s, p, n)` as a call of the registered
        // `substr`, which has ksqlDB's and Flink's indexing; DataFusion would plan its own
        // (PostgreSQL's) for the special syntax.
        Expr::Substring { expr, substring_from, substring_for, .. } => {
            let from = substring_from.take().map(|b| *b).unwrap_or(Expr::value(sqlparser::ast::Value::Number("1".into(), false)));
            let args = [
                Some(std::mem::replace(expr.as_mut(), Expr::value(sqlparser::ast::Value::Null))),
                Some(from),
                substring_for.take().map(|b| *b),
            ]
            .into_iter()
            .flatten()
            .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
            .collect();
            *e = Expr::Function(sqlparser::ast::Function {
                name: ObjectName::from(vec![Ident::new("substr")]),
                uses_odbc_syntax: false,
                parameters: FunctionArguments::None,
                args: FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
                    duplicate_treatment: None,
                    args,
                    clauses: Vec::new(),
                }),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: Vec::new(),
            });
        }
        Expr::Identifier(i) if i.quote_style.is_none() => {
            let upper = i.value.to_uppercase();
            if windowed && upper == "WINDOWSTART" {
                *e = Expr::Identifier(Ident { value: WINDOW_START.into(), ..i.clone() });
            } else if windowed && upper == "WINDOWEND" {
                *e = Expr::Identifier(Ident { value: WINDOW_END.into(), ..i.clone() });
            }
        }
        Expr::Function(f) => {
            let name = f.name.to_string().to_uppercase();
            match name.as_str() {
                "TUMBLE_START" | "HOP_START" | "SESSION_START" if windowed => *e = ident(WINDOW_START),
                "TUMBLE_END" | "HOP_END" | "SESSION_END" if windowed => *e = ident(WINDOW_END),
                "TUMBLE_ROWTIME" | "HOP_ROWTIME" | "SESSION_ROWTIME" | "TUMBLE_PROCTIME" | "HOP_PROCTIME" | "SESSION_PROCTIME"
                    if error.is_none() =>
                {
                    *error = Some(
                        SqlError::new(format!("{name} is not supported"))
                            .at(expr_position(e))
                            .hint("select window_start or window_end instead"),
                    );
                }
                "LATEST_BY_OFFSET" | "EARLIEST_BY_OFFSET" => {
                    // ksqlDB: by offset = by arrival order within a partition, which is
                    // DataFusion's unordered last_value / first_value over a micro-batch stream.
                    // The second argument: `ignoreNulls` (default true in ksqlDB), or a count.
                    let new = if name == "LATEST_BY_OFFSET" { "last_value" } else { "first_value" };
                    let mut ignore_nulls = true;
                    if let FunctionArguments::List(list) = &mut f.args {
                        let texts: Vec<String> = list.args.iter().map(function_arg_text).collect();
                        let is_count = |t: &str| t.parse::<i64>().is_ok();
                        match texts.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                            [_] => {}
                            [_, "TRUE"] => ignore_nulls = true,
                            [_, "FALSE"] => ignore_nulls = false,
                            // A count of values: the last (first) n, as an ARRAY.
                            [_, n] | [_, n, "TRUE" | "FALSE"] if is_count(n) => {
                                if list.args.len() == 2 {
                                    list.args.push(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
                                        sqlparser::ast::Value::Boolean(true),
                                    ))));
                                }
                                let udaf = if name == "LATEST_BY_OFFSET" {
                                    super::functions::ByOffsetN::LATEST
                                } else {
                                    super::functions::ByOffsetN::EARLIEST
                                };
                                f.name = ObjectName::from(vec![Ident::new(udaf)]);
                                return;
                            }
                            _ if error.is_none() => {
                                *error = Some(
                                    SqlError::new(format!("wrong arguments for {name}"))
                                        .at(expr_position(e))
                                        .hint(format!("write {name}(column [, ignoreNulls]) or {name}(column, n [, ignoreNulls])")),
                                );
                                return;
                            }
                            _ => return,
                        }
                        list.args.truncate(1);
                    }
                    if let Expr::Function(f) = e {
                        f.name = ObjectName::from(vec![Ident::new(new)]);
                        f.null_treatment = Some(if ignore_nulls {
                            sqlparser::ast::NullTreatment::IgnoreNulls
                        } else {
                            sqlparser::ast::NullTreatment::RespectNulls
                        });
                    }
                }
                // ksqlDB's names for DataFusion's string functions.
                "UCASE" | "LCASE" | "LEN" => {
                    let new = match name.as_str() {
                        "UCASE" => "upper",
                        "LCASE" => "lower",
                        _ => "character_length",
                    };
                    f.name = ObjectName::from(vec![Ident::new(new)]);
                }
                // ksqlDB's collections: COLLECT_LIST / COLLECT_SET are DataFusion's
                // array_agg (DISTINCT); TOPK / TOPKDISTINCT the k largest, largest first.
                "COLLECT_LIST" | "COLLECT_SET" | "TOPK" | "TOPKDISTINCT" => {
                    let args: Vec<String> = match &f.args {
                        FunctionArguments::List(list) => list.args.iter().map(|a| a.to_string()).collect(),
                        _ => Vec::new(),
                    };
                    let distinct = matches!(name.as_str(), "COLLECT_SET" | "TOPKDISTINCT");
                    let agg = |col: &str| format!("array_agg({}{col})", if distinct { "DISTINCT " } else { "" });
                    let sql = match (name.as_str(), args.as_slice()) {
                        ("COLLECT_LIST" | "COLLECT_SET", [col]) => agg(col),
                        ("TOPK" | "TOPKDISTINCT", [col, k]) => {
                            format!("array_slice(array_sort(array_agg({}{col}) FILTER (WHERE {col} IS NOT NULL), 'DESC', 'NULLS LAST'), 1, {k})", if distinct { "DISTINCT " } else { "" })
                        }
                        _ => {
                            if error.is_none() {
                                *error = Some(SqlError::new(format!("wrong arguments for {name}")).at(expr_position(e)).hint(
                                    match name.as_str() {
                                        "TOPK" | "TOPKDISTINCT" => format!("write {name}(column, k)"),
                                        _ => format!("write {name}(column)"),
                                    },
                                ));
                            }
                            return;
                        }
                    };
                    match Parser::new(&GenericDialect {}).try_with_sql(&sql).and_then(|mut p| p.parse_expr()) {
                        Ok(replacement) => *e = replacement,
                        Err(err) if error.is_none() => {
                            *error = Some(SqlError::new(format!("cannot plan {name}: {err}")).at(expr_position(e)))
                        }
                        Err(_) => {}
                    }
                }
                "FIRST_VALUE" | "LAST_VALUE" if f.over.is_none() => {
                    // Flink: by event time. Without a declared event-time column the
                    // arrival order (the Kafka timestamp order within a partition) is used.
                    if let (Some(column), FunctionArguments::List(list)) = (event_column, &mut f.args) {
                        let ordered = list.clauses.iter().any(|c| matches!(c, FunctionArgumentClause::OrderBy(_)));
                        if !ordered {
                            list.clauses.push(FunctionArgumentClause::OrderBy(vec![OrderByExpr {
                                expr: ident(column),
                                options: OrderByOptions { asc: None, nulls_first: None },
                                with_fill: None,
                            }]));
                        }
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// Calls its closure on every expression of what it visits, innermost first.
pub(crate) struct RewriteExprs<F>(pub(crate) F);

impl<F: FnMut(&mut Expr)> sqlparser::ast::VisitorMut for RewriteExprs<F> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        (self.0)(expr);
        ControlFlow::Continue(())
    }
}
