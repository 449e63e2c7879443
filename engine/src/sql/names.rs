//! Name checks before DataFusion planning, so that an unknown stream or column is
//! reported at its line and column with the closest known name:
//! `unknown column "acount_id" (line 3, column 8); did you mean "account_id"?`

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::DataType;
use sqlparser::ast::Visit;
use sqlparser::ast::{Expr, Query, Select, SelectItem, SetExpr, TableFactor};

use super::parser::{name_of, normalize_ident, object_name};
use crate::catalog::{Catalog, Relation};
use crate::error::{closest, Position, SqlError};

/// The single relation a persistent query reads, after checking every name it uses.
///
/// Errors: set operations, joins or subqueries in FROM (not supported yet), an unknown
/// stream, an unknown qualifier, an unknown column, each with position and hint.
pub fn check_query<'a>(query: &'a Query, catalog: &Catalog) -> Result<(&'a Select, Arc<Relation>), SqlError> {
    let select = match query.body.as_ref() {
        SetExpr::Select(select) => select.as_ref(),
        other => {
            let kind = other.to_string().split_whitespace().next().unwrap_or("").to_uppercase();
            return Err(SqlError::new(format!("unsupported query form: {kind}"))
                .hint("a persistent query is SELECT ... FROM one stream [WHERE ...]"));
        }
    };
    if query.with.is_some() {
        return Err(SqlError::new("WITH (common table expressions) is not supported in a persistent query"));
    }
    let [from] = select.from.as_slice() else {
        return Err(SqlError::new(if select.from.is_empty() {
            "the query has no FROM"
        } else {
            "FROM with several relations is not supported"
        })
        .hint("read from one stream: SELECT ... FROM stream"));
    };
    if let Some(join) = from.joins.first() {
        let position = match &join.relation {
            TableFactor::Table { name, .. } => object_name(name).ok().and_then(|n| n.position),
            _ => None,
        };
        return Err(SqlError::new("joins are not supported yet").at(position).hint("read from one stream"));
    }
    let (name, alias) = match &from.relation {
        TableFactor::Table { name, alias, args: None, .. } => (object_name(name)?, alias.as_ref().map(|a| normalize_ident(&a.name))),
        TableFactor::MatchRecognize { .. } => {
            return Err(SqlError::new("MATCH_RECOGNIZE must read a stream directly, in the FROM of the query itself")
                .hint("write SELECT ... FROM stream MATCH_RECOGNIZE (...)"));
        }
        other => {
            return Err(SqlError::new(format!("unsupported FROM item: {other}")).hint("read from a stream by name"));
        }
    };
    let relation = catalog.get(&name.value).cloned().ok_or_else(|| {
        let hint = closest(&name.value, catalog.names()).map(|c| format!("did you mean \"{c}\"?"));
        SqlError::new(format!("unknown stream or table \"{}\"", name.value))
            .at(name.position)
            .maybe_hint(hint.or_else(|| Some("create it first with CREATE STREAM ... WITH (kafka_topic=...)".to_string())))
    })?;
    check_columns(select, &relation, alias.as_deref())?;
    Ok((select, relation))
}

fn check_columns(select: &Select, relation: &Relation, alias: Option<&str>) -> Result<(), SqlError> {
    let columns: Vec<&str> = relation.schema.fields().iter().map(|f| f.name().as_str()).collect();
    let aliases: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(normalize_ident(alias)),
            _ => None,
        })
        .collect();
    let unknown_column = |ident: &sqlparser::ast::Ident| -> SqlError {
        let name = name_of(ident);
        let hint = match closest(&name.value, columns.iter().copied()) {
            Some(c) => format!("did you mean \"{c}\"?"),
            None => format!("columns of {}: {}", relation.name, columns.join(", ")),
        };
        SqlError::new(format!("unknown column \"{}\"", name.value)).at(name.position).hint(hint)
    };
    let result = select.visit(&mut ExprVisitor(|expr: &Expr| -> Result<(), SqlError> {
        match expr {
            Expr::Identifier(ident) => {
                let n = normalize_ident(ident);
                if !columns.contains(&n.as_str()) && !aliases.contains(&n) {
                    return Err(unknown_column(ident));
                }
            }
            // `addr.street`: a field of a ROW column (DataFusion resolves the field).
            Expr::CompoundIdentifier(parts)
                if relation
                    .schema
                    .field_with_name(&normalize_ident(&parts[0]))
                    .is_ok_and(|f| matches!(f.data_type(), DataType::Struct(_))) => {}
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let qualifier = normalize_ident(&parts[0]);
                if qualifier != relation.name && Some(qualifier.as_str()) != alias {
                    let known = alias.unwrap_or(&relation.name);
                    return Err(SqlError::new(format!("unknown qualifier \"{qualifier}\""))
                        .at(Position::from_location(parts[0].span.start))
                        .hint(format!("did you mean \"{known}\"?")));
                }
                if !columns.contains(&normalize_ident(&parts[1]).as_str()) {
                    return Err(unknown_column(&parts[1]));
                }
            }
            _ => {}
        }
        Ok(())
    }));
    match result {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct ExprVisitor<F>(F);

impl<F: FnMut(&Expr) -> Result<(), SqlError>> sqlparser::ast::Visitor for ExprVisitor<F> {
    type Break = SqlError;

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<SqlError> {
        match (self.0)(expr) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }
}

/// Names the unnamed computed columns of a ksqlDB query as ksqlDB does: each SELECT item
/// that is neither a column reference nor aliased becomes `KSQL_COL_<n>` (`ksql_col_<n>`
/// once normalized), `n` counting from 0 over those items and skipping names already
/// taken. So `SELECT id, COUNT(*)` has the columns `id, ksql_col_0`, as in ksqlDB.
pub fn ksql_column_aliases(query: &mut Query) {
    let SetExpr::Select(select) = query.body.as_mut() else { return };
    let taken: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(normalize_ident(alias)),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(normalize_ident(i)),
            _ => None,
        })
        .collect();
    let mut next = 0;
    for item in select.projection.iter_mut() {
        let SelectItem::UnnamedExpr(expr) = item else { continue };
        if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            continue;
        }
        let alias = loop {
            let candidate = format!("ksql_col_{next}");
            next += 1;
            if !taken.contains(&candidate) {
                break candidate;
            }
        };
        *item = SelectItem::ExprWithAlias { expr: expr.clone(), alias: sqlparser::ast::Ident::new(alias) };
    }
}
