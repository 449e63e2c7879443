//! Views, common table expressions and subqueries in FROM, merged into the query that
//! reads them (view merging, as every SQL optimizer does it), so that the rest of the
//! planner sees one `SELECT ... FROM stream` whatever the user nested:
//!
//! - `CREATE VIEW v AS SELECT ...` (Flink) stores the query; `FROM v` reads it;
//! - `WITH v AS (SELECT ...) SELECT ... FROM v` (a CTE);
//! - `FROM (SELECT ...) AS v` (a derived table).
//!
//! The inner query must project and filter one stream or table (`SELECT exprs FROM s
//! [WHERE p]`; nested views merge in turn). Merging puts the inner expressions in place
//! of the outer query's references to the view's columns, the inner source in place of
//! the view, and ANDs the two WHERE clauses; the outer query may then do anything a
//! query over the source may (windows, GROUP BY, MATCH_RECOGNIZE over a plain source,
//! joins). An inner query that aggregates, joins or sorts is refused with the way out:
//! write its rows to a stream with `CREATE STREAM ... AS SELECT` and read that.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, Query, Select, SelectItem, SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor,
    TableWithJoins,
};

use super::parser::normalize_ident;
use crate::catalog::Catalog;
use crate::error::{Position, SqlError};

/// Deepest nesting of views merged into one query (a view that reads itself, directly
/// or through others, stops here).
const MAX_DEPTH: usize = 32;

/// A stored view (`CREATE VIEW name [(columns)] AS query`).
#[derive(Debug, Clone)]
pub struct View {
    /// Normalized name.
    pub name: String,
    /// Its query as written.
    pub query: Query,
    /// `CREATE VIEW v (a, b)`: the names of its columns, in order; empty: the query's.
    pub columns: Vec<Ident>,
    /// The statement's text.
    pub sql: String,
}

/// `query` with every view, CTE and derived table it reads merged in; the query itself
/// when it reads none.
///
/// Errors: a view's query cannot be merged (it aggregates, joins, sorts or is a UNION),
/// a column of a view without a name is read, views nest deeper than 32.
pub fn expand(query: &Query, catalog: &Catalog) -> Result<Query, SqlError> {
    expand_query(query, catalog, &BTreeMap::new(), 0)
}

/// Whether `query` reads a view, a CTE or a derived table (and so needs [`expand`]).
pub fn reads_views(query: &Query, catalog: &Catalog) -> bool {
    if query.with.is_some() {
        return true;
    }
    let SetExpr::Select(select) = query.body.as_ref() else { return false };
    select.from.iter().any(|f| match &f.relation {
        TableFactor::Derived { .. } => true,
        TableFactor::Table { name, .. } => name_of(name).is_some_and(|n| catalog.view(&n).is_some()),
        _ => false,
    })
}

fn name_of(name: &sqlparser::ast::ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [part] => part.as_ident().map(normalize_ident),
        _ => None,
    }
}

fn expand_query(
    query: &Query,
    catalog: &Catalog,
    outer_ctes: &BTreeMap<String, (Query, Vec<Ident>)>,
    depth: usize,
) -> Result<Query, SqlError> {
    if depth > MAX_DEPTH {
        return Err(SqlError::new(format!("views nest deeper than {MAX_DEPTH}: does a view read itself?"))
            .hint("DROP VIEW and create it over a stream or table"));
    }
    let mut query = query.clone();
    let mut ctes = outer_ctes.clone();
    if let Some(with) = query.with.take() {
        if with.recursive {
            return Err(SqlError::new("WITH RECURSIVE is not supported").hint("a stream query reads each row once; drop RECURSIVE"));
        }
        for cte in with.cte_tables {
            let expanded = expand_query(&cte.query, catalog, &ctes, depth + 1)?;
            let columns = cte.alias.columns.iter().map(|c| c.name.clone()).collect();
            ctes.insert(normalize_ident(&cte.alias.name), (expanded, columns));
        }
    }
    if let SetExpr::Select(select) = query.body.as_mut() {
        super::interval_join::comma_join(select);
    }
    let empty = query.clone_without_body();
    if let SetExpr::SetOperation { op: SetOperator::Union, set_quantifier: SetQuantifier::All, left, right } = query.body.as_mut() {
        // UNION ALL: each branch on its own.
        for branch in [left, right] {
            let mut q = query_of(branch.as_ref().clone(), &empty);
            q = expand_query(&q, catalog, &ctes, depth + 1)?;
            **branch = *q.body;
        }
        return Ok(query);
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        if ctes.len() > outer_ctes.len() || matches!(query.body.as_ref(), SetExpr::SetOperation { .. }) {
            return Err(SqlError::new(format!("{} is not supported yet", set_kind(&query.body)))
                .hint("UNION ALL is; write each SELECT as its own INSERT INTO the same sink otherwise"));
        }
        return Ok(query);
    };
    // Joined tables may not be views: their columns are read by the join as they are.
    for from in &select.from {
        for join in &from.joins {
            if let Some(name) = inner_name(&join.relation, catalog, &ctes) {
                return Err(SqlError::new(format!("joining the view or subquery \"{name}\" is not supported yet"))
                    .at(position(&join.relation))
                    .hint("join the stream or table it reads, or write its rows to a stream with CREATE STREAM ... AS SELECT"));
            }
        }
    }
    let [from] = select.from.as_mut_slice() else { return Ok(query) };
    if let Some((name, alias)) = window_tvf_view(&from.relation, catalog, &ctes) {
        let (inner, columns) = match ctes.get(&name) {
            Some((q, c)) => (q.clone(), c.clone()),
            None => match catalog.view(&name) {
                Some(view) => (expand_query(&view.query, catalog, &BTreeMap::new(), depth + 1)?, view.columns.clone()),
                None => return Ok(query),
            },
        };
        let (inner_from, inner_where, outputs) = mergeable(&inner, &columns, &name, catalog)?;
        retarget_window_tvf(&mut from.relation, &name, &inner_from, &outputs)?;
        merge(select, &alias, None, inner_where, &outputs)?;
        return Ok(query);
    }
    let Some((alias, inner, columns)) = inner_query(&from.relation, catalog, &ctes, depth)? else { return Ok(query) };
    let (inner_from, inner_where, outputs) = mergeable(&inner, &columns, &alias, catalog)?;
    merge(select, &alias, Some(inner_from), inner_where, &outputs)?;
    Ok(query)
}

/// The view (or CTE) a Flink window TVF reads (`TABLE(TUMBLE(TABLE v, ...))`), and the
/// name its columns are qualified with.
fn window_tvf_view(factor: &TableFactor, catalog: &Catalog, ctes: &BTreeMap<String, (Query, Vec<Ident>)>) -> Option<(String, String)> {
    let TableFactor::TableFunction { expr: Expr::Function(f), alias } = factor else { return None };
    let sqlparser::ast::FunctionArguments::List(list) = &f.args else { return None };
    let Some(sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(Expr::Identifier(table)))) = list.args.first()
    else {
        return None;
    };
    let name = normalize_ident(table);
    (ctes.contains_key(&name) || catalog.view(&name).is_some()).then(|| {
        let qualifier = alias.as_ref().map_or(name.clone(), |a| normalize_ident(&a.name));
        (name, qualifier)
    })
}

/// Points the window TVF at the view's source: `TABLE v` becomes `TABLE source`, and
/// `DESCRIPTOR(col)` names the source column the view's `col` is.
///
/// Errors: the view's source has an alias, or the time column is computed by the view.
fn retarget_window_tvf(factor: &mut TableFactor, view: &str, inner_from: &TableWithJoins, outputs: &[Output]) -> Result<(), SqlError> {
    let TableFactor::Table { name: source, alias: None, .. } = &inner_from.relation else {
        return Err(SqlError::new(format!("a window over \"{view}\" needs its source read without an alias"))
            .hint("drop the alias in the view's FROM, or window its source directly"));
    };
    let TableFactor::TableFunction { expr: Expr::Function(f), .. } = factor else { return Ok(()) };
    let sqlparser::ast::FunctionArguments::List(list) = &mut f.args else { return Ok(()) };
    for (i, arg) in list.args.iter_mut().enumerate() {
        let sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(e)) = arg else { continue };
        if i == 0 {
            if let Some(part) = source.0.last().and_then(|p| p.as_ident()) {
                *e = Expr::Identifier(part.clone());
            }
            continue;
        }
        let Expr::Function(d) = e else { continue };
        if !d.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") {
            continue;
        }
        let sqlparser::ast::FunctionArguments::List(inner) = &mut d.args else { continue };
        for a in &mut inner.args {
            let sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(Expr::Identifier(column))) = a else { continue };
            let Some(o) = outputs.iter().find(|o| o.name == normalize_ident(column)) else { continue };
            match &o.expr {
                Expr::Identifier(base) => *column = base.clone(),
                Expr::CompoundIdentifier(parts) if !parts.is_empty() => *column = parts[parts.len() - 1].clone(),
                other => {
                    return Err(SqlError::new(format!("the time column {} of \"{view}\" is computed ({other})", o.name))
                        .hint("window over a column of the view's source: its event time column"))
                }
            }
        }
    }
    Ok(())
}

/// A query of `body` alone (no WITH, ORDER BY or LIMIT).
fn query_of(body: SetExpr, empty: &Query) -> Query {
    let mut q = empty.clone();
    q.body = Box::new(body);
    q
}

/// Methods on sqlparser's `Query` this module needs.
trait QueryExt {
    /// The query with an empty SELECT body and no WITH, ORDER BY, LIMIT or FETCH.
    fn clone_without_body(&self) -> Query;
}

impl QueryExt for Query {
    fn clone_without_body(&self) -> Query {
        let mut q = self.clone();
        q.with = None;
        q.order_by = None;
        q.limit_clause = None;
        q.fetch = None;
        q.body = Box::new(SetExpr::Values(sqlparser::ast::Values { explicit_row: false, value_keyword: false, rows: Vec::new() }));
        q
    }
}

fn set_kind(body: &SetExpr) -> String {
    match body {
        SetExpr::SetOperation { op, set_quantifier, .. } => format!("{op} {set_quantifier}").trim().to_string(),
        SetExpr::Values(_) => "VALUES".into(),
        _ => "this query form".into(),
    }
}

fn position(factor: &TableFactor) -> Option<Position> {
    Position::from_location(factor.span().start)
}

/// The name of a view, CTE or derived table `factor` reads, if it is one.
fn inner_name(factor: &TableFactor, catalog: &Catalog, ctes: &BTreeMap<String, (Query, Vec<Ident>)>) -> Option<String> {
    match factor {
        TableFactor::Derived { alias, .. } => Some(alias.as_ref().map_or("subquery".to_string(), |a| a.name.value.clone())),
        TableFactor::Table { name, .. } => name_of(name).filter(|n| ctes.contains_key(n) || catalog.view(n).is_some()),
        _ => None,
    }
}

/// The alias, expanded query and column names of the view, CTE or derived table that
/// `factor` reads; `None` for a plain source.
fn inner_query(
    factor: &TableFactor,
    catalog: &Catalog,
    ctes: &BTreeMap<String, (Query, Vec<Ident>)>,
    depth: usize,
) -> Result<Option<(String, Query, Vec<Ident>)>, SqlError> {
    match factor {
        TableFactor::Derived { lateral, subquery, alias, .. } => {
            if *lateral {
                return Err(SqlError::new("LATERAL is not supported").at(position(factor)));
            }
            let expanded = expand_query(subquery, catalog, ctes, depth + 1)?;
            let (name, columns) = match alias {
                Some(a) => (normalize_ident(&a.name), a.columns.iter().map(|c| c.name.clone()).collect()),
                None => (String::new(), Vec::new()),
            };
            Ok(Some((name, expanded, columns)))
        }
        TableFactor::Table { name, alias, args: None, .. } => {
            let Some(n) = name_of(name) else { return Ok(None) };
            let (query, columns) = if let Some((q, c)) = ctes.get(&n) {
                (q.clone(), c.clone())
            } else if let Some(view) = catalog.view(&n) {
                (expand_query(&view.query, catalog, &BTreeMap::new(), depth + 1)?, view.columns.clone())
            } else {
                return Ok(None);
            };
            let alias = alias.as_ref().map_or(n, |a| normalize_ident(&a.name));
            Ok(Some((alias, query, columns)))
        }
        TableFactor::MatchRecognize { table, .. } => match inner_name(table, catalog, ctes) {
            Some(name) => Err(SqlError::new(format!("MATCH_RECOGNIZE over the view or subquery \"{name}\" is not supported yet"))
                .at(position(factor))
                .hint("write the view's rows to a stream with CREATE STREAM ... AS SELECT, and match over that")),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// One output column of a view: its normalized name, the alias to give it, and the
/// expression over the view's source.
struct Output {
    name: String,
    alias: Ident,
    expr: Expr,
}

/// The source, WHERE and output columns of a view's query `inner`.
///
/// Errors: it is not `SELECT exprs FROM one_source [WHERE p]`, or an output has no name.
fn mergeable(
    inner: &Query,
    columns: &[Ident],
    view: &str,
    catalog: &Catalog,
) -> Result<(TableWithJoins, Option<Expr>, Vec<Output>), SqlError> {
    let refuse = |what: &str| {
        Err(SqlError::new(format!("a view or subquery that {what} cannot be read yet (\"{view}\")"))
            .hint("write its rows to a stream with CREATE STREAM ... AS SELECT, and read that"))
    };
    let SetExpr::Select(select) = inner.body.as_ref() else { return refuse("is not a plain SELECT") };
    if inner.order_by.is_some() || inner.limit_clause.is_some() || inner.fetch.is_some() {
        return refuse("sorts or limits");
    }
    let Select { distinct, projection, from, selection, group_by, having, named_window, qualify, .. } = select.as_ref();
    let grouped = match group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(e, _) => !e.is_empty(),
    };
    if grouped || having.is_some() || distinct.is_some() {
        return refuse("aggregates");
    }
    if !named_window.is_empty() || qualify.is_some() {
        return refuse("uses window functions");
    }
    let [from] = from.as_slice() else { return refuse("reads more than one relation") };
    if !from.joins.is_empty() {
        return refuse("joins");
    }
    let TableFactor::Table { name: source, alias: source_alias, args: None, .. } = &from.relation else {
        return refuse("reads a table function or MATCH_RECOGNIZE");
    };
    if projection.iter().any(contains_aggregate) {
        return refuse("aggregates");
    }
    let mut outputs = Vec::new();
    for item in projection {
        match item {
            SelectItem::UnnamedExpr(expr @ Expr::Identifier(i)) => {
                outputs.push(Output { name: normalize_ident(i), alias: i.clone(), expr: expr.clone() })
            }
            SelectItem::UnnamedExpr(expr @ Expr::CompoundIdentifier(parts)) if !parts.is_empty() => {
                let i = &parts[parts.len() - 1];
                outputs.push(Output { name: normalize_ident(i), alias: i.clone(), expr: expr.clone() })
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                outputs.push(Output { name: normalize_ident(alias), alias: alias.clone(), expr: expr.clone() })
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                let relation = name_of(source).and_then(|n| catalog.get(&n).cloned()).ok_or_else(|| {
                    SqlError::new(format!("unknown stream or table {source}")).at(Position::from_location(source.span().start))
                })?;
                let qualifier = source_alias.as_ref().map(|a| a.name.clone());
                for field in relation.schema.fields() {
                    let column = Ident::with_quote('"', field.name());
                    let expr = match &qualifier {
                        Some(q) => Expr::CompoundIdentifier(vec![q.clone(), column.clone()]),
                        None => Expr::Identifier(column.clone()),
                    };
                    outputs.push(Output { name: field.name().clone(), alias: column, expr });
                }
            }
            SelectItem::UnnamedExpr(expr) => {
                return Err(SqlError::new(format!("the column {expr} of \"{view}\" has no name"))
                    .at(Position::from_location(expr.span().start))
                    .hint(format!("name it: {expr} AS name")))
            }
            other => return Err(SqlError::new(format!("unsupported select item in \"{view}\": {other}"))),
        }
    }
    if !columns.is_empty() {
        if columns.len() != outputs.len() {
            return Err(SqlError::new(format!("\"{view}\" names {} columns but its query returns {}", columns.len(), outputs.len()))
                .hint("name every column of the query, in order"));
        }
        for (o, c) in outputs.iter_mut().zip(columns) {
            o.name = normalize_ident(c);
            o.alias = c.clone();
        }
    }
    Ok((from.clone(), selection.clone(), outputs))
}

/// Whether `item` calls an aggregate function (by name: the common ones of both dialects).
fn contains_aggregate(item: &SelectItem) -> bool {
    let expr = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return false,
    };
    let mut found = false;
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.to_string().to_lowercase();
            if matches!(
                name.as_str(),
                "count"
                    | "sum"
                    | "avg"
                    | "min"
                    | "max"
                    | "collect_list"
                    | "collect_set"
                    | "count_distinct"
                    | "topk"
                    | "latest_by_offset"
                    | "earliest_by_offset"
                    | "listagg"
                    | "string_agg"
                    | "array_agg"
                    | "stddev"
                    | "variance"
            ) || f.over.is_some()
            {
                found = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// Merges the view read as `alias` (source `inner_from`, WHERE `inner_where`, columns
/// `outputs`) into `select`.
fn merge(
    select: &mut Select,
    alias: &str,
    inner_from: Option<TableWithJoins>,
    inner_where: Option<Expr>,
    outputs: &[Output],
) -> Result<(), SqlError> {
    let by_name: BTreeMap<&str, &Output> = outputs.iter().map(|o| (o.name.as_str(), o)).collect();
    let resolve = |e: &Expr| -> Option<&Output> {
        match e {
            Expr::Identifier(i) => by_name.get(normalize_ident(i).as_str()).copied(),
            Expr::CompoundIdentifier(parts) if parts.len() == 2 && normalize_ident(&parts[0]) == alias => {
                by_name.get(normalize_ident(&parts[1]).as_str()).copied()
            }
            _ => None,
        }
    };
    let replaced = |o: &Output| -> Expr {
        match &o.expr {
            e @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => e.clone(),
            e => Expr::Nested(Box::new(e.clone())),
        }
    };
    // The SELECT list keeps the view's column names: a reference to a view column is
    // named after it before the references are replaced (once, below).
    let reference = |o: &Output| -> SelectItem {
        let e = Expr::Identifier(o.alias.clone());
        match replaced(o) {
            Expr::Identifier(i) if normalize_ident(&i) == o.name => SelectItem::UnnamedExpr(e),
            Expr::CompoundIdentifier(parts) if parts.last().is_some_and(|i| normalize_ident(i) == o.name) => SelectItem::UnnamedExpr(e),
            _ => SelectItem::ExprWithAlias { expr: e, alias: o.alias.clone() },
        }
    };
    let mut projection = Vec::with_capacity(select.projection.len());
    for item in std::mem::take(&mut select.projection) {
        match item {
            SelectItem::Wildcard(_) => projection.extend(outputs.iter().map(reference)),
            SelectItem::QualifiedWildcard(sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(n), _)
                if name_of(&n).as_deref() == Some(alias) =>
            {
                projection.extend(outputs.iter().map(reference))
            }
            SelectItem::UnnamedExpr(e) => match resolve(&e) {
                Some(o) => projection.push(match reference(o) {
                    SelectItem::ExprWithAlias { alias, .. } => SelectItem::ExprWithAlias { expr: e, alias },
                    _ => SelectItem::UnnamedExpr(e),
                }),
                None => projection.push(SelectItem::UnnamedExpr(e)),
            },
            other => projection.push(other),
        }
    }
    select.projection = projection;
    let mut unknown: Option<(String, Option<Position>)> = None;
    let mut substitute = |e: &mut Expr| {
        if let Some(o) = resolve(e) {
            *e = replaced(o);
        } else if let Expr::CompoundIdentifier(parts) = &*e {
            if parts.len() == 2 && normalize_ident(&parts[0]) == alias && unknown.is_none() {
                unknown = Some((e.to_string(), Position::from_location(parts[1].span.start)));
            }
        }
        ControlFlow::<()>::Continue(())
    };
    let _ = sqlparser::ast::visit_expressions_mut(&mut select.projection, &mut substitute);
    let _ = sqlparser::ast::visit_expressions_mut(&mut select.selection, &mut substitute);
    let _ = sqlparser::ast::visit_expressions_mut(&mut select.group_by, &mut substitute);
    let _ = sqlparser::ast::visit_expressions_mut(&mut select.having, &mut substitute);
    for from in &mut select.from {
        for join in &mut from.joins {
            let _ = sqlparser::ast::visit_expressions_mut(&mut join.join_operator, &mut substitute);
        }
    }
    if let Some((column, at)) = unknown {
        let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(SqlError::new(format!("\"{alias}\" has no column {column}")).at(at).hint(format!("its columns: {}", names.join(", "))));
    }
    select.selection = match (inner_where, select.selection.take()) {
        (Some(i), Some(o)) => Some(Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(i))),
            op: BinaryOperator::And,
            right: Box::new(Expr::Nested(Box::new(o))),
        }),
        (i, o) => i.or(o),
    };
    // The view's source takes the view's place; joins of the outer query stay.
    if let (Some(from), Some(inner)) = (select.from.first_mut(), inner_from) {
        from.relation = inner.relation;
    }
    Ok(())
}
