//! Navigation in MATCH_RECOGNIZE (SQL:2016): references to rows other than the current
//! one (`A.col`, `FIRST(A.col, n)`, `LAST(..)`, `PREV(..)`), aggregates over a variable's
//! rows, and `MATCH_NUMBER()` / `CLASSIFIER()` / `MATCH_ROWTIME()`, rewritten into
//! columns (`__nav_<i>`, `__agg_<j>`, `__match_number`, ...) of a schema that DataFusion
//! plans the DEFINE and MEASURES expressions over. The operator fills those columns per
//! partial match or per match.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::Expr as DfExpr;
use datafusion::physical_expr::aggregate::{AggregateFunctionExpr, LoweredAggregateBuilder};
use datafusion::sql::planner::{PlannerContext, SqlToRel};
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectNamePart, Spanned, Value, VisitMut, VisitorMut};

use super::context::CatalogContext;
use super::parser::normalize_ident;
use super::planner::df_error;
use crate::catalog::Catalog;
use crate::error::{closest, Position, SqlError};

/// `MATCH_NUMBER()` in the measure schema.
pub const MATCH_NUMBER: &str = "__match_number";
/// `CLASSIFIER()` in the measure schema.
pub const CLASSIFIER: &str = "__classifier";
/// `MATCH_ROWTIME()` in the measure schema.
pub const MATCH_ROWTIME: &str = "__match_rowtime";

/// A reference to a row other than "the current one": which row, and which column of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Navigation {
    /// The pattern variable whose rows are counted (index into the program's
    /// variables), or `None` for every row of the (partial) match.
    pub variable: Option<usize>,
    /// Count from the first such row (`FIRST`) rather than the last (`LAST`, `A.col`).
    pub from_start: bool,
    /// How many such rows to skip (`FIRST(A.x, 1)` is the second `A` row).
    pub index: usize,
    /// Then go this many rows back in the partition (`PREV(.., n)`), whatever their class.
    pub prev: usize,
    /// The source column read (index into the source's schema).
    pub column: usize,
    /// SQL text, for EXPLAIN.
    pub display: String,
}

impl Navigation {
    /// The row this navigation reads, given the classified rows `(row, variable)` in
    /// order (in DEFINE, with the current row appended as its candidate variable);
    /// `None` (read as NULL) when there is no such row.
    pub fn resolve(&self, rows: &[(usize, usize)]) -> Option<usize> {
        let mut of_variable = rows.iter().filter(|(_, v)| self.variable.is_none_or(|x| x == *v));
        let anchor = if self.from_start { of_variable.nth(self.index) } else { of_variable.rev().nth(self.index) }?;
        anchor.0.checked_sub(self.prev)
    }

    /// Whether this reads the current row (or one at a fixed distance before it) in the
    /// DEFINE of `variable`: such references do not depend on earlier classifications.
    pub(crate) fn is_current_row(&self, variable: usize) -> bool {
        !self.from_start && self.index == 0 && self.variable.is_none_or(|v| v == variable)
    }
}

/// An aggregate over one variable's rows (or every row of the match): in MEASURES over
/// the match (or, with ALL ROWS PER MATCH, the match so far), in DEFINE over the partial
/// match with the current row.
#[derive(Debug, Clone)]
pub struct MeasureAggregate {
    /// The variable, or `None` for all rows.
    pub variable: Option<usize>,
    /// DataFusion's aggregate; its arguments are over the source's schema.
    pub function: Arc<AggregateFunctionExpr>,
    /// SQL text, for EXPLAIN.
    pub display: String,
}

/// DataFusion's type coercion (`SUM` of an INT, INT compared with BIGINT), which its
/// analyzer applies to plans and Eddy applies to these free-standing expressions.
pub(crate) fn coerce(expr: DfExpr, schema: &DFSchema) -> Result<DfExpr, SqlError> {
    use datafusion::common::tree_node::TreeNode;
    let mut rewriter = datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter::new(schema);
    expr.rewrite(&mut rewriter).map(|t| t.data).map_err(df_error)
}

pub(crate) fn navigation_schema(navigations: &[Navigation], schema: &Schema, prefix: &str) -> SchemaRef {
    Arc::new(Schema::new(
        navigations
            .iter()
            .enumerate()
            .map(|(i, n)| Field::new(format!("{prefix}{i}"), schema.field(n.column).data_type().clone(), true))
            .collect::<Vec<_>>(),
    ))
}

pub(crate) fn column_index(ident: &Ident, schema: &Schema) -> Result<usize, SqlError> {
    let name = normalize_ident(ident);
    schema.index_of(&name).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        SqlError::new(format!("unknown column \"{name}\"")).at(Position::from_location(ident.span.start)).hint(
            closest(&name, names.iter().copied())
                .map(|c| format!("did you mean \"{c}\"?"))
                .unwrap_or_else(|| format!("columns: {}", names.join(", "))),
        )
    })
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope {
    /// The DEFINE of `variable`; the current row's columns stay columns (vectorized
    /// conjuncts) or become navigations.
    Define {
        /// The variable defined.
        variable: usize,
        /// Keep the current row's columns as columns (vectorized conjuncts).
        current_as_column: bool,
    },
    Measure,
}

/// Replaces navigation, aggregates and MATCH_NUMBER / CLASSIFIER / MATCH_ROWTIME by
/// columns of the schema the expression is then planned over.
pub(crate) struct Rewriter<'a> {
    scope: Scope,
    schema: &'a Schema,
    variables: &'a [String],
    df_schema: &'a DFSchema,
    state: &'a SessionState,
    pub(crate) navigations: Vec<Navigation>,
    pub(crate) aggregates: Vec<MeasureAggregate>,
    pub(crate) uses_match_number: bool,
}

impl<'a> Rewriter<'a> {
    pub(crate) fn new(scope: Scope, schema: &'a Schema, variables: &'a [String], df_schema: &'a DFSchema, state: &'a SessionState) -> Self {
        Rewriter { scope, schema, variables, df_schema, state, navigations: Vec::new(), aggregates: Vec::new(), uses_match_number: false }
    }

    pub(crate) fn rewrite(&mut self, expr: &mut Expr) -> Result<(), SqlError> {
        match expr.visit(self) {
            ControlFlow::Break(e) => Err(e),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    fn variable(&self, ident: &Ident) -> Option<usize> {
        let v = normalize_ident(ident);
        self.variables.iter().position(|x| *x == v)
    }

    /// A column reference `col` or `v.col`: `(variable or None, column index)`.
    fn reference(&self, expr: &Expr) -> Result<Option<(Option<usize>, usize, String)>, SqlError> {
        match expr {
            Expr::Identifier(ident) => Ok(Some((None, column_index(ident, self.schema)?, normalize_ident(ident)))),
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let variable = self.variable(&parts[0]).ok_or_else(|| {
                    SqlError::new(format!("unknown pattern variable \"{}\"", normalize_ident(&parts[0])))
                        .at(Position::from_location(parts[0].span.start))
                        .hint(format!("qualify columns by a PATTERN variable: {}", self.variables.join(", ")))
                })?;
                let column = column_index(&parts[1], self.schema)?;
                Ok(Some((Some(variable), column, format!("{}.{}", self.variables[variable], normalize_ident(&parts[1])))))
            }
            _ => Ok(None),
        }
    }

    /// The column that stands for `navigation` in the rewritten expression.
    fn navigation(&mut self, navigation: Navigation) -> Expr {
        let i = match self.navigations.iter().position(|n| {
            n.variable == navigation.variable
                && n.from_start == navigation.from_start
                && n.index == navigation.index
                && n.prev == navigation.prev
                && n.column == navigation.column
        }) {
            Some(i) => i,
            None => {
                self.navigations.push(navigation);
                self.navigations.len() - 1
            }
        };
        Expr::Identifier(Ident::new(format!("__nav_{i}")))
    }

    /// A plain reference: in DEFINE of `x`, `col` and `x.col` are the current row.
    fn plain(&mut self, variable: Option<usize>, column: usize, display: String) -> Option<Expr> {
        let current = match self.scope {
            Scope::Define { variable: x, current_as_column } => {
                let is_current = variable.is_none_or(|v| v == x);
                if is_current && current_as_column {
                    return Some(Expr::Identifier(Ident::with_quote('"', self.schema.field(column).name())));
                }
                is_current.then_some(x)
            }
            Scope::Measure => None,
        };
        Some(self.navigation(Navigation { variable: current.or(variable), from_start: false, index: 0, prev: 0, column, display }))
    }

    fn function(&mut self, f: &sqlparser::ast::Function, position: Option<Position>) -> Result<Option<Expr>, SqlError> {
        let name = f.name.to_string().to_uppercase();
        let args: Vec<&FunctionArg> = match &f.args {
            FunctionArguments::List(list) => list.args.iter().collect(),
            FunctionArguments::None => Vec::new(),
            FunctionArguments::Subquery(_) => return Ok(None),
        };
        let measure = matches!(self.scope, Scope::Measure);
        let only_measures = |what: &str| SqlError::new(format!("{what} can only be used in MEASURES")).at(position);
        match name.as_str() {
            "FIRST" | "LAST" | "PREV" => {
                // PREV(x) is one row back; FIRST(x) and LAST(x) the first and last row.
                let default = usize::from(name == "PREV");
                let (target, offset) = match args.as_slice() {
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => (e, default),
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(e)), FunctionArg::Unnamed(FunctionArgExpr::Expr(n))] => {
                        (e, offset_of(n, &name)?)
                    }
                    _ => return Err(navigation_error(&name, position)),
                };
                let Some((variable, column, display)) = self.reference(target)? else { return Err(navigation_error(&name, position)) };
                let text = if offset == default { format!("{name}({display})") } else { format!("{name}({display}, {offset})") };
                let navigation = match name.as_str() {
                    "FIRST" => Navigation { variable, from_start: true, index: offset, prev: 0, column, display: text },
                    "LAST" => Navigation { variable, from_start: false, index: offset, prev: 0, column, display: text },
                    _ => {
                        // PREV counts rows of the partition back from the current row
                        // (DEFINE) or from the last row of the variable.
                        let anchor = match (self.scope, variable) {
                            (Scope::Define { variable: x, .. }, None) => Some(x),
                            (_, v) => v,
                        };
                        Navigation { variable: anchor, from_start: false, index: 0, prev: offset, column, display: text }
                    }
                };
                Ok(Some(self.navigation(navigation)))
            }
            "NEXT" => Err(SqlError::new("NEXT is not supported: a stream cannot look at rows that have not arrived")
                .at(position)
                .hint("rewrite the condition on the later row with PREV, as Flink requires")),
            "MATCH_NUMBER" if measure => {
                self.uses_match_number = true;
                Ok(Some(Expr::Identifier(Ident::new(MATCH_NUMBER))))
            }
            "CLASSIFIER" if measure => Ok(Some(Expr::Identifier(Ident::new(CLASSIFIER)))),
            "MATCH_ROWTIME" if measure => Ok(Some(Expr::Identifier(Ident::new(MATCH_ROWTIME)))),
            "MATCH_NUMBER" | "CLASSIFIER" | "MATCH_ROWTIME" => Err(only_measures(&format!("{name}()"))),
            // In DEFINE an aggregate is RUNNING: over the rows classified so far, the
            // current row included when it is the variable's (SQL:2016, Flink).
            "COUNT" | "SUM" | "AVG" | "MIN" | "MAX" => self.aggregate(f, &name, position).map(Some),
            _ => Ok(None),
        }
    }

    /// An aggregate over one variable's rows (or all rows), planned by DataFusion over the
    /// source's schema with the variable's qualifier removed.
    fn aggregate(&mut self, f: &sqlparser::ast::Function, name: &str, position: Option<Position>) -> Result<Expr, SqlError> {
        let mut variable: Option<Option<usize>> = None;
        let mut set_variable = |v: Option<usize>| -> Result<(), SqlError> {
            match variable {
                Some(existing) if existing != v => Err(SqlError::new(format!("{name} mixes rows of different pattern variables"))
                    .at(position)
                    .hint("aggregate one variable's rows, e.g. SUM(B.amount)")),
                _ => {
                    variable = Some(v);
                    Ok(())
                }
            }
        };
        let mut plain = f.clone();
        if let FunctionArguments::List(list) = &mut plain.args {
            for arg in &mut list.args {
                let FunctionArg::Unnamed(arg) = arg else {
                    return Err(SqlError::new(format!("named arguments are not supported in {name}")).at(position));
                };
                match arg {
                    FunctionArgExpr::Wildcard => set_variable(None)?,
                    FunctionArgExpr::WildcardWithOptions(_) => {
                        return Err(SqlError::new(format!("{name}(* ...) with wildcard options is not supported")).at(position))
                    }
                    FunctionArgExpr::QualifiedWildcard(q) => {
                        let ident = match q.0.as_slice() {
                            [ObjectNamePart::Identifier(i)] => i.clone(),
                            _ => return Err(SqlError::new(format!("{name}({q}.*) needs a pattern variable")).at(position)),
                        };
                        let v = self.variable(&ident).ok_or_else(|| {
                            SqlError::new(format!("unknown pattern variable \"{}\"", normalize_ident(&ident)))
                                .at(Position::from_location(ident.span.start))
                                .hint(format!("PATTERN uses {}", self.variables.join(", ")))
                        })?;
                        set_variable(Some(v))?;
                        *arg = FunctionArgExpr::Wildcard;
                    }
                    FunctionArgExpr::Expr(e) => {
                        let mut failure = None;
                        let _ = sqlparser::ast::visit_expressions_mut(e, |inner| {
                            if let Expr::CompoundIdentifier(parts) = inner {
                                if parts.len() == 2 {
                                    match self.variable(&parts[0]) {
                                        Some(v) => {
                                            if let Err(err) = set_variable(Some(v)) {
                                                failure = Some(err);
                                            }
                                            *inner = Expr::Identifier(parts[1].clone());
                                        }
                                        None => {
                                            failure = Some(
                                                SqlError::new(format!("unknown pattern variable \"{}\"", normalize_ident(&parts[0])))
                                                    .at(Position::from_location(parts[0].span.start))
                                                    .hint(format!("PATTERN uses {}", self.variables.join(", "))),
                                            )
                                        }
                                    }
                                }
                            }
                            ControlFlow::<()>::Continue(())
                        });
                        if let Some(err) = failure {
                            return Err(err);
                        }
                    }
                }
            }
        }
        let display = Expr::Function(f.clone()).to_string();
        let ctx_catalog = Catalog::default();
        let ctx = CatalogContext::new(&ctx_catalog, self.state);
        let logical = SqlToRel::new(&ctx)
            .sql_to_expr(Expr::Function(plain), self.df_schema, &mut PlannerContext::new())
            .map_err(|e| df_error(e).at(position))?
            .unalias_nested()
            .data;
        let logical = coerce(logical, self.df_schema)?;
        if !matches!(logical, DfExpr::AggregateFunction(_)) {
            return Err(SqlError::new(format!("{display} is not an aggregate Eddy can compute")).at(position));
        }
        let physical: SchemaRef = Arc::new(self.schema.clone());
        let lowered = LoweredAggregateBuilder::new(
            &logical,
            self.df_schema,
            &physical,
            self.state.execution_props(),
            &PhysicalPlanningContext::default(),
        )
        .with_name(display.clone())
        .build()
        .map_err(df_error)?;
        self.aggregates.push(MeasureAggregate { variable: variable.flatten(), function: lowered.aggregate, display });
        Ok(Expr::Identifier(Ident::new(format!("__agg_{}", self.aggregates.len() - 1))))
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = SqlError;

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<SqlError> {
        let position = Position::from_location(expr.span().start);
        let replaced = match &*expr {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => match self.reference(expr) {
                Ok(Some((variable, column, display))) => self.plain(variable, column, display),
                Ok(None) => None,
                Err(e) => return ControlFlow::Break(e),
            },
            Expr::Function(f) => match self.function(&f.clone(), position) {
                Ok(r) => r,
                Err(e) => return ControlFlow::Break(e),
            },
            _ => None,
        };
        if let Some(r) = replaced {
            *expr = r;
        }
        ControlFlow::Continue(())
    }
}

fn offset_of(expr: &Expr, function: &str) -> Result<usize, SqlError> {
    if let Expr::Value(v) = expr {
        if let Value::Number(n, _) = &v.value {
            if let Ok(n) = n.parse::<usize>() {
                return Ok(n);
            }
        }
    }
    Err(SqlError::new(format!("the offset of {function} must be a non-negative integer, found {expr}"))
        .at(Position::from_location(expr.span().start))
        .hint(format!("e.g. {function}(A.price, 1)")))
}

fn navigation_error(function: &str, position: Option<Position>) -> SqlError {
    SqlError::new(format!("{function} takes a column, optionally of a pattern variable, and an optional offset"))
        .at(position)
        .hint(format!("e.g. {function}(A.price) or {function}(A.price, 1)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nav(variable: Option<usize>, from_start: bool, index: usize, prev: usize) -> Navigation {
        Navigation { variable, from_start, index, prev, column: 0, display: String::new() }
    }

    #[test]
    fn navigation_resolves_first_last_and_prev() {
        // Rows 10..=14 classified a, b, b, a, b (variables 0 and 1).
        let rows = [(10, 0), (11, 1), (12, 1), (13, 0), (14, 1)];
        assert_eq!(nav(Some(0), false, 0, 0).resolve(&rows), Some(13), "A.x: the last A row");
        assert_eq!(nav(Some(0), true, 0, 0).resolve(&rows), Some(10), "FIRST(A.x)");
        assert_eq!(nav(Some(1), true, 1, 0).resolve(&rows), Some(12), "FIRST(B.x, 1)");
        assert_eq!(nav(Some(1), false, 2, 0).resolve(&rows), Some(11), "LAST(B.x, 2)");
        assert_eq!(nav(Some(1), false, 3, 0).resolve(&rows), None, "no fourth B from the end");
        assert_eq!(nav(None, false, 0, 0).resolve(&rows), Some(14), "x: the last row of the match");
        assert_eq!(nav(Some(0), false, 0, 2).resolve(&rows), Some(11), "PREV(A.x, 2): two rows before the last A");
        assert_eq!(nav(None, true, 0, 11).resolve(&rows), None, "PREV before the partition's first row");
        assert_eq!(nav(Some(2), false, 0, 0).resolve(&rows), None, "a variable without rows");
    }
}
